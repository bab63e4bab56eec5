// The SPIR-V modules compiled from backends/vulkan/shaders at build time
// (cmake/EmbedSpirv.cmake), by variant name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace mst {

struct SpirvModule {
    const char *name;
    const uint32_t *words;
    size_t n_words;
};

// The module of that name, or nullptr.
const SpirvModule *vk_spirv_find(const char *name);
// Every module (tests/unit/test_vulkan_write_masks.cpp checks each one's write mask).
std::span<const SpirvModule> vk_spirv_modules();

}  // namespace mst
