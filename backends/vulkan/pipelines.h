// Compute pipelines, one per embedded shader variant and set of specialization constants,
// created on first use. Every pipeline binds its buffers as storage buffers 0..n-1 of
// descriptor set 0 and takes up to kPushBytes of push constants.
#pragma once

#include <vulkan/vulkan.h>

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/vulkan/vulkan_context.h"

namespace mst {

struct VulkanPipeline {
    VkPipeline pipeline = VK_NULL_HANDLE;
    VkPipelineLayout layout = VK_NULL_HANDLE;
    VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
    uint32_t n_bindings = 0;
    uint32_t write_mask = 0;  // bit i: the shader writes binding i (command_stream.cpp's barriers)
    std::string name;         // the shader variant, for the per-dispatch profile (MST_VULKAN_PROFILE=1)
};

// The bindings shader variant `name` writes, bit i for binding i (every bit for a name it
// does not know): command_stream.cpp's barriers see a hazard only on these.
uint32_t shader_write_mask(const std::string &name);

class PipelineCache {
public:
    static constexpr uint32_t kPushBytes = 128;  // the minimum every device guarantees

    explicit PipelineCache(const VulkanContext &ctx) : ctx_(ctx) {}
    ~PipelineCache();
    PipelineCache(const PipelineCache &) = delete;
    PipelineCache &operator=(const PipelineCache &) = delete;

    // The pipeline of shader variant `name` (cmake/EmbedSpirv.cmake) with n_bindings
    // storage buffers; spec[i] is specialization constant i. Throws MST_ERR_BACKEND.
    // Found without allocating: ops look their pipeline up on every dispatch.
    const VulkanPipeline &get(std::string_view name, uint32_t n_bindings, std::initializer_list<uint32_t> spec = {});
    // Pipelines created so far, and the host seconds their creation took (the driver
    // compiles each one: milliseconds on a GPU's driver, where a step's dispatches take
    // microseconds).
    uint64_t created() const { return created_; }
    double create_seconds() const { return create_seconds_; }

private:
    // Name and specialization constants; the map compares them as views too (Less), so a
    // lookup builds no key.
    struct Key {
        std::string name;
        std::vector<uint32_t> spec;
    };
    struct KeyView {
        std::string_view name;
        const uint32_t *spec;
        size_t n_spec;
    };
    struct Less {
        using is_transparent = void;
        static KeyView view(const Key &k) { return {k.name, k.spec.data(), k.spec.size()}; }
        static const KeyView &view(const KeyView &k) { return k; }
        template <class A, class B>
        bool operator()(const A &a, const B &b) const {
            return less(view(a), view(b));
        }
        static bool less(const KeyView &a, const KeyView &b);
    };
    const VulkanContext &ctx_;
    std::map<Key, VulkanPipeline, Less> pipelines_;
    std::vector<VkShaderModule> modules_;
    uint64_t created_ = 0;
    double create_seconds_ = 0;
};

}  // namespace mst
