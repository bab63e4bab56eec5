// The prefill attention on cooperative matrices (shaders/attention_flash.comp,
// backends/vulkan/op_attention_flash.cpp) against the CPU backend's attention: its float
// build (MST_VULKAN_FLASH_ATTENTION=emulated: the same tiling, staging and masking, which
// lavapipe runs) always, and its cooperative-matrix build where the device has cooperative
// matrices. Prompts that end inside a block of 32 keys and inside a workgroup's queries,
// prompts after earlier tokens (pos0 > 0), GQA groups 1, 4 and 8, heads of 64 and 128,
// sliding windows, sinks, v narrower than k; both staging precisions (split's unpadded
// tiles and f16's padded ones on lavapipe's 32 KiB of shared memory); and the shapes it
// leaves to the blocked kernel. Without a Vulkan device every test is skipped, saying so.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "core/error.h"
#include "attention_case.h"
#include "cpu_op_fixture.h"
#include "scoped_env.h"
#include "vulkan_suite.h"

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN

// V and P are staged as one f16 each (2^-11 relative), Q and K split under the default
// precision: the output within 2e-3 of the CPU's at its scale (the blocked kernel's float
// path holds test_vulkan_ops' 2e-5); under f16 the scores carry Q's and K's rounding too.
constexpr double kSplitBound = 2e-3, kF16Bound = 4e-3;

struct Case {
    int32_t n_tokens, n_heads, n_kv_heads, head_dim, v_head_dim, pos0, window;
    bool sinks;
};

std::string describe(const Case &c) {
    std::ostringstream s;
    s << c.n_tokens << " tokens after " << c.pos0 << ", heads " << c.n_heads << "/" << c.n_kv_heads << ", dims "
      << c.head_dim << "/" << c.v_head_dim << ", window " << c.window << ", sinks " << c.sinks;
    return s.str();
}

// Normalized error of the GPU's attention against the CPU's for case c (rows 3 floats apart
// past the context).
double attention_error(Backend &cpu, Backend &gpu, const Case &c) {
    const test::AttentionCase a{c.n_tokens, c.n_heads, c.n_kv_heads, c.head_dim, c.v_head_dim, c.pos0, c.window, c.sinks, 3};
    return test::attention_error(cpu, gpu, a, 71);
}

// The float build on lavapipe takes minutes at the 30B shape's 512 x 32 heads of 128: the
// 512-token prompts are narrow here (the cooperative test and bench_vulkan_prefill
// --attention take the full shape on a GPU).
const Case kCases[] = {
    {16, 8, 1, 128, 128, 5, 0, false},  {17, 32, 4, 128, 128, 40, 0, false}, {33, 4, 4, 64, 64, 0, 0, true},
    {100, 8, 2, 64, 64, 77, 0, false},  {100, 16, 2, 128, 128, 3, 24, true}, {33, 8, 1, 64, 48, 31, 0, false},
    {70, 4, 1, 128, 128, 64, 40, true}, {20, 12, 3, 32, 32, 9, 0, false},    {512, 2, 1, 64, 64, 37, 0, false},
    {512, 1, 1, 128, 128, 100, 200, true},
};
// The 512-token prompts at the 30B shape: 32 heads on 4 KV heads of 128 (GPU only).
const Case kFullShape[] = {{512, 32, 4, 128, 128, 0, 0, false}, {512, 32, 4, 128, 128, 100, 0, false}};

class VulkanFlashAttention : public test::VulkanSuite {
protected:
    void TearDown() override {
        if (!vulkan_) return;
        vulkan_->set_flash_attention(VulkanBackend::FlashAttention::automatic);
        std::string why;
        vulkan_->set_coop_precision(CoopPrecision::split, why);
    }
    // Every case under `mode` and `precision`: within `bound`, and each taken by the kernel.
    template <size_t N>
    void check_cases(const Case (&cases)[N], VulkanBackend::FlashAttention mode, CoopPrecision precision,
                     double bound) {
        std::string why;
        ASSERT_TRUE(vulkan_->set_coop_precision(precision, why)) << why;
        vulkan_->set_flash_attention(mode);
        for (const Case &c : cases) {
            const uint64_t before = vulkan_->flash_attention_dispatches();
            EXPECT_LT(attention_error(cpu_, *vulkan_, c), bound) << describe(c) << ", " << coop_precision_name(precision);
            EXPECT_EQ(vulkan_->flash_attention_dispatches(), before + 1) << describe(c) << ": not the flash kernel";
        }
    }
    CpuBackend cpu_{2, cpu_isa_best()};
};

TEST_F(VulkanFlashAttention, EmulatedMatchesCpuSplit) {
    check_cases(kCases, VulkanBackend::FlashAttention::emulated, CoopPrecision::split, kSplitBound);
}

// f16 staging of Q and K: the shader's other precision, and on lavapipe its padded tiles
// (the first cases: the staging is the same for all).
TEST_F(VulkanFlashAttention, EmulatedMatchesCpuF16) {
    const Case cases[] = {kCases[1], kCases[4], kCases[5], kCases[6]};
    check_cases(cases, VulkanBackend::FlashAttention::emulated, CoopPrecision::f16, kF16Bound);
}

TEST_F(VulkanFlashAttention, CooperativeMatchesCpu) {
    if (!vulkan_->context().cooperative_matrix())
        GTEST_SKIP() << "no cooperative matrices: " << vulkan_->context().cooperative_matrix_why_not();
    check_cases(kCases, VulkanBackend::FlashAttention::automatic, CoopPrecision::split, kSplitBound);
    check_cases(kFullShape, VulkanBackend::FlashAttention::automatic, CoopPrecision::split, kSplitBound);
    check_cases(kCases, VulkanBackend::FlashAttention::automatic, CoopPrecision::exact, kSplitBound);
    check_cases(kCases, VulkanBackend::FlashAttention::automatic, CoopPrecision::f16, kF16Bound);
    check_cases(kFullShape, VulkanBackend::FlashAttention::automatic, CoopPrecision::f16, kF16Bound);
}

// Shapes the kernel does not cover keep the blocked kernel (and its float accuracy); off
// keeps it for every shape; a decode-sized call keeps attention.comp.
TEST_F(VulkanFlashAttention, UncoveredShapesTakeTheBlockedKernel) {
    vulkan_->set_flash_attention(VulkanBackend::FlashAttention::emulated);
    const Case uncovered[] = {
        {40, 4, 2, 72, 72, 0, 0, false},   // head size not a multiple of 16
        {40, 4, 2, 64, 72, 3, 0, true},    // nor the value size
        {24, 128, 1, 16, 16, 0, 0, false},  // a GQA group above 64
    };
    for (const Case &c : uncovered) {
        const uint64_t flash = vulkan_->flash_attention_dispatches(), blocked = vulkan_->blocked_attention_dispatches();
        EXPECT_LT(attention_error(cpu_, *vulkan_, c), 2e-5) << describe(c);
        EXPECT_EQ(vulkan_->flash_attention_dispatches(), flash) << describe(c);
        EXPECT_EQ(vulkan_->blocked_attention_dispatches(), blocked + 1) << describe(c);
    }
    vulkan_->set_flash_attention(VulkanBackend::FlashAttention::off);
    const uint64_t flash = vulkan_->flash_attention_dispatches();
    EXPECT_LT(attention_error(cpu_, *vulkan_, kCases[1]), 2e-5);
    vulkan_->set_flash_attention(VulkanBackend::FlashAttention::emulated);
    EXPECT_LT(attention_error(cpu_, *vulkan_, Case{3, 8, 2, 64, 64, 20, 0, false}), 2e-5);  // attention.comp
    EXPECT_EQ(vulkan_->flash_attention_dispatches(), flash);
}

// Its shared memory: split's unpadded tiles fit Vulkan implementations' common 32 KiB, the
// padded ones NVIDIA's 48 KiB.
TEST_F(VulkanFlashAttention, SharedMemoryFits) {
    EXPECT_LE(VulkanBackend::flash_attention_shared_bytes(CoopPrecision::split, false), 32768u);
    EXPECT_LE(VulkanBackend::flash_attention_shared_bytes(CoopPrecision::f16, true), 32768u);
    EXPECT_LE(VulkanBackend::flash_attention_shared_bytes(CoopPrecision::exact, true), 49152u);
}

// MST_VULKAN_FLASH_ATTENTION sets the mode it names (auto, the default, too: the evening
// call of 2026-12-07 found "auto" leaving the kernel off while it was not the default).
TEST_F(VulkanFlashAttention, EnvironmentSetsTheModeItNames) {
    using Mode = VulkanBackend::FlashAttention;
    EXPECT_EQ(VulkanBackend(BackendOptions{}, false).flash_attention(), Mode::automatic);
    for (const auto &[value, mode] : {std::pair{"auto", Mode::automatic}, std::pair{"emulated", Mode::emulated},
                                      std::pair{"off", Mode::off}}) {
        const test::ScopedEnv env("MST_VULKAN_FLASH_ATTENTION", value);
        EXPECT_EQ(VulkanBackend(BackendOptions{}, false).flash_attention(), mode) << value;
    }
}

// MST_VULKAN_FLASH_ATTENTION takes auto, emulated and off, and nothing else: a backend made
// under any other value fails, naming the variable.
TEST_F(VulkanFlashAttention, EnvironmentRejectsAnUnknownValue) {
    const test::ScopedEnv env("MST_VULKAN_FLASH_ATTENTION", "on");
    try {
        VulkanBackend b(BackendOptions{}, false);
        ADD_FAILURE() << "MST_VULKAN_FLASH_ATTENTION=on was taken";
    } catch (const Error &e) {
        EXPECT_NE(std::string(e.what()).find("MST_VULKAN_FLASH_ATTENTION"), std::string::npos) << e.what();
    }
}

#else
TEST(VulkanFlashAttention, NeedsVulkan) { GTEST_SKIP() << "this build has no Vulkan backend"; }
#endif

}  // namespace
}  // namespace mst
