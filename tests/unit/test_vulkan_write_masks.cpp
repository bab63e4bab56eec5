// The Vulkan backend places a pipeline barrier only where a command reads or writes what an
// earlier one of the level wrote, and it learns what a shader writes from its name
// (shader_write_mask, backends/vulkan/pipelines.cpp), not from the shader. A variant whose
// name falls under another's rule and writes more (attention_split_gqa_fused under
// attention_split's, which wrote only the partials) gets no barrier before the reader of
// its other outputs: a race on a GPU that lavapipe, running one command at a time, never
// shows. So for every compiled variant this reads the SPIR-V itself: each storage buffer of
// descriptor set 0 whose block has a member without NonWritable (a `buffer` or `writeonly`
// block, not `readonly`) must be a bit of the name's write mask. No device needed.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/pipelines.h"
#include "backends/vulkan/spirv_table.h"
#endif

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN

// SPIR-V opcodes and decorations used below (the SPIR-V specification, 3.x).
constexpr uint32_t kOpTypeStruct = 30, kOpTypePointer = 32, kOpVariable = 59, kOpDecorate = 71,
                   kOpMemberDecorate = 72;
constexpr uint32_t kDecorationNonWritable = 24, kDecorationBinding = 33, kDecorationDescriptorSet = 34;
constexpr uint32_t kStorageClassUniform = 2, kStorageClassStorageBuffer = 12;

// The bindings of set 0 whose buffers the module may write.
std::set<uint32_t> writable_bindings(const SpirvModule &m) {
    std::map<uint32_t, uint32_t> binding, set;       // variable id -> binding, descriptor set
    std::set<uint32_t> nonwritable_vars;              // NonWritable on the variable itself
    std::map<uint32_t, std::set<uint32_t>> ro_members;  // struct id -> members marked NonWritable
    std::map<uint32_t, uint32_t> struct_members;      // struct id -> member count
    std::map<uint32_t, uint32_t> pointee;             // pointer type id -> pointee type id
    std::vector<std::pair<uint32_t, uint32_t>> vars;  // (variable id, pointer type id) of buffers
    for (size_t at = 5; at < m.n_words;) {
        const uint32_t word = m.words[at], op = word & 0xffff, n = word >> 16;
        if (n == 0 || at + n > m.n_words) break;
        const uint32_t *w = m.words + at;
        if (op == kOpDecorate && n >= 3) {
            if (w[2] == kDecorationBinding && n >= 4) binding[w[1]] = w[3];
            if (w[2] == kDecorationDescriptorSet && n >= 4) set[w[1]] = w[3];
            if (w[2] == kDecorationNonWritable) nonwritable_vars.insert(w[1]);
        } else if (op == kOpMemberDecorate && n >= 4 && w[3] == kDecorationNonWritable) {
            ro_members[w[1]].insert(w[2]);
        } else if (op == kOpTypeStruct) {
            struct_members[w[1]] = n - 2;
        } else if (op == kOpTypePointer && n >= 4) {
            pointee[w[1]] = w[3];
        } else if (op == kOpVariable && n >= 4 && (w[3] == kStorageClassStorageBuffer || w[3] == kStorageClassUniform)) {
            vars.push_back({w[2], w[1]});
        }
        at += n;
    }
    std::set<uint32_t> out;
    for (const auto &[var, pointer] : vars) {
        if (!binding.count(var) || set[var] != 0 || nonwritable_vars.count(var)) continue;
        const auto p = pointee.find(pointer);
        if (p == pointee.end()) continue;
        const auto s = struct_members.find(p->second);
        if (s == struct_members.end()) continue;
        if (ro_members[p->second].size() < s->second) out.insert(binding[var]);
    }
    return out;
}

TEST(VulkanWriteMasks, EveryWritableBufferOfEveryShaderIsInItsWriteMask) {
    size_t checked = 0;
    for (const SpirvModule &m : vk_spirv_modules()) {
        const uint32_t mask = shader_write_mask(m.name);
        for (uint32_t b : writable_bindings(m))
            EXPECT_TRUE(b < 32 && (mask >> b & 1u))
                << m.name << " may write binding " << b << " but its write mask is 0x" << std::hex << mask;
        ++checked;
    }
    EXPECT_GT(checked, 100u) << "the SPIR-V table is smaller than the shaders compiled";
}

// The reader above finds writable buffers at all (a parser that found none would pass).
TEST(VulkanWriteMasks, TheReaderSeesWritableAndReadOnlyBuffers) {
    // gemm_q4: binding 0 the weights and 1 x (readonly), 2 y (writeonly).
    const SpirvModule *gemm = vk_spirv_find("gemm_q4");
    ASSERT_NE(gemm, nullptr);
    EXPECT_EQ(writable_bindings(*gemm), (std::set<uint32_t>{2}));
    // attention_split_rows_fused: the partials, o and the counter.
    const SpirvModule *split = vk_spirv_find("attention_split_rows_fused");
    ASSERT_NE(split, nullptr);
    EXPECT_EQ(writable_bindings(*split), (std::set<uint32_t>{3, 6, 7}));
}

#else

TEST(VulkanWriteMasks, EveryWritableBufferOfEveryShaderIsInItsWriteMask) {
    GTEST_SKIP() << "this build has no Vulkan backend (MST_VULKAN=OFF or no Vulkan headers / glslangValidator)";
}

#endif

}  // namespace
}  // namespace mst
