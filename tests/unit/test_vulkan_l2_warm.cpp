// The L2 warm-up (docs/gpu_decode_kernels.md, "Weights pulled into L2 beside a latency-bound
// level"; MST_VULKAN_L2_WARM, backends/vulkan/op_l2_warm.cpp): l2_warm dispatches recorded
// into levels that are there anyway, reading weights and writing nothing anyone reads. A
// greedy decode of qwen3_moe_tiny with each warm (o, qkv, both) against none: the same
// logits bit for bit, the same barriers, exactly the warm dispatches more commands, and the
// warms where they are meant to be (o in every layer of every step; the next layer's q/k/v
// after the experts of every layer but the last, from the second step on, once the first step
// learned them). On the device's memory and on a discrete GPU's path (test::VulkanMemorySuite);
// without a Vulkan device every test is skipped, saying so.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "stable_weight.h"
#include "cpu_op_fixture.h"

#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/command_stream.h"
#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"
#include "golden.h"
#include "model/loaded_model.h"
#include "scoped_env.h"
#include "test_paths.h"
#include "vulkan_memory_suite.h"
#endif

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN

using test::float_bits;

constexpr int32_t kSteps = 12;  // decode steps after the golden prompt
constexpr int64_t kLayers = 3;  // qwen3_moe_tiny's: 0 and 2 with routed experts, 1 a dense FFN

struct Decoded {
    std::vector<std::vector<float>> logits;
    uint64_t commands = 0, barriers = 0, warms = 0, replayed = 0;
};

// Greedy decode of qwen3_moe_tiny with the warm `which` (VulkanBackend::kWarmO, kWarmQkv),
// its ranges from 16 bytes (the tiny model's weights are far below kWarmMinBytes).
Decoded greedy(uint32_t which, bool separate_memory) {
    const test::ScopedEnv warm("MST_VULKAN_L2_WARM", "0");
    const test::ScopedEnv memory("MST_VULKAN_SEPARATE_MEMORY", separate_memory ? "1" : "0");
    const std::string dir = test::data_path("qwen3_moe_tiny");
    LoadOptions options;
    options.backend = "vulkan";
    const auto model = load_model(dir, options);
    auto *vk = dynamic_cast<VulkanBackend *>(model->backend.get());
    EXPECT_NE(vk, nullptr);
    Decoded d;
    if (!vk) return d;
    EXPECT_EQ(vk->l2_warm(), 0u) << "MST_VULKAN_L2_WARM=0";
    vk->set_l2_warm(which, 8, 16);
    const test::Golden golden = test::load_golden(dir + "/golden.safetensors");
    ForwardOptions fo;
    fo.experts_per_token = model->experts_per_token;
    const int32_t positions = int32_t(golden.input_ids.size()) + kSteps;
    const auto state = model->model->create_state(positions + 1);
    std::vector<float> logits(size_t(model->config.vocab_size));
    ExpertIoStats io;
    model->model->forward(*state, 0, golden.input_ids, fo, logits.data(), io);
    const uint64_t c0 = vk->stream().commands(), b0 = vk->stream().barriers(), w0 = vk->l2_warm_dispatches(),
                   r0 = vk->stream().replayed();
    for (int32_t pos = int32_t(golden.input_ids.size()); pos < positions; ++pos) {
        const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        const std::vector<int32_t> one{next};
        model->model->forward(*state, pos, one, fo, logits.data(), io);
        d.logits.push_back(logits);
    }
    d.commands = vk->stream().commands() - c0;
    d.barriers = vk->stream().barriers() - b0;
    d.warms = vk->l2_warm_dispatches() - w0;
    d.replayed = vk->stream().replayed() - r0;
    return d;
}

class VulkanL2Warm : public test::VulkanMemorySuite {};

TEST_P(VulkanL2Warm, ADecodeOfATinyModelKeepsItsBitsAndBarriers) {
    const Decoded off = greedy(0, GetParam());
    ASSERT_EQ(off.logits.size(), size_t(kSteps));
    EXPECT_EQ(off.warms, 0u);
    // o: each layer's o product, and layer 1's dense FFN down product (deferred for its
    // residual add too, warmed in silu_mul's level). qkv: only layer 0's experts are followed
    // by a q/k/v within the step (layer 1 is dense, layer 2 is followed by the head), warmed
    // from the second step on.
    const uint64_t o_warms = (kLayers + 1) * kSteps, qkv_warms = kSteps - 1;
    for (const uint32_t which : {VulkanBackend::kWarmO, VulkanBackend::kWarmQkv,
                                 VulkanBackend::kWarmO | VulkanBackend::kWarmQkv}) {
        const std::string what = std::string("warm ") + VulkanBackend::l2_warm_name(which);
        const Decoded on = greedy(which, GetParam());
        const uint64_t want = (which & VulkanBackend::kWarmO ? o_warms : 0) +
                              (which & VulkanBackend::kWarmQkv ? qkv_warms : 0);
        EXPECT_EQ(on.warms, want) << what << ": not every layer warmed what it should";
        EXPECT_EQ(on.barriers, off.barriers) << what << ": a warm added a barrier";
        EXPECT_EQ(on.commands, off.commands + on.warms) << what << ": commands other than the warms changed";
        EXPECT_EQ(on.replayed > 0, off.replayed > 0) << what << ": the warms stopped replay";
        ASSERT_EQ(on.logits.size(), off.logits.size());
        for (size_t t = 0; t < on.logits.size(); ++t)
            ASSERT_EQ(float_bits(on.logits[t]), float_bits(off.logits[t])) << what << ", decode step " << t;
    }
}

// One token's o product and the residual add after it (their one matvec_add dispatch), at
// the default smallest range: a 2 MiB bf16 weight is warmed by one dispatch in the level
// open before it, a 1 MiB one (a router's size) is not; the sum the same bits either way.
TEST_P(VulkanL2Warm, AProductBeforeAnAddIsWarmedFromTwoMebibytes) {
    for (const int64_t rows : {1024, 512}) {
        const int64_t cols = 1024;
        const WeightView w = test::stable_weight(DType::BF16, rows, cols, 5);
        const std::vector<float> a = test::random_floats(size_t(cols), 6), x0 = test::random_floats(size_t(rows), 7);
        std::vector<float> got[2];
        uint64_t barriers[2], commands[2], warms[2];
        for (const bool on : {false, true}) {
            gpu().set_l2_warm(on ? VulkanBackend::kWarmO : 0);
            for (int pass = 0; pass < 2; ++pass) {  // the first: the weight's first use (a discrete GPU's copy)
                std::vector<float> x = x0, y(static_cast<size_t>(rows));
                const uint64_t b0 = gpu().stream().barriers(), c0 = gpu().stream().commands(),
                               w0 = gpu().l2_warm_dispatches();
                {
                    BackendBatch batch(gpu());
                    gpu().matmul(w, a.data(), y.data(), 1);
                    gpu().add(x.data(), y.data(), rows);
                }
                got[on] = x;
                barriers[on] = gpu().stream().barriers() - b0;
                commands[on] = gpu().stream().commands() - c0;
                warms[on] = gpu().l2_warm_dispatches() - w0;
            }
        }
        gpu().set_l2_warm(0);
        const std::string what = std::to_string(rows) + " rows";
        const uint64_t want = rows * cols * 2 >= int64_t(VulkanBackend::kWarmMinBytes) ? 1 : 0;
        EXPECT_EQ(warms[0], 0u) << what;
        EXPECT_EQ(warms[1], want) << what;
        EXPECT_EQ(commands[1], commands[0] + want) << what;
        EXPECT_EQ(barriers[1], barriers[0]) << what << ": the warm added a barrier";
        EXPECT_EQ(float_bits(got[1]), float_bits(got[0])) << what;
    }
}

// MST_VULKAN_L2_WARM and MST_VULKAN_L2_WARM_GROUPS, read when the backend is made: each
// value's warm, and a value that is none of them an error rather than a silent default.
TEST_P(VulkanL2Warm, TheSwitchesAreReadStrictly) {
    const std::string dir = test::data_path("qwen3_moe_tiny");
    LoadOptions options;
    options.backend = "vulkan";
    const std::pair<const char *, uint32_t> values[] = {{"0", 0},
                                                        {"1", VulkanBackend::kWarmO | VulkanBackend::kWarmQkv},
                                                        {"o", VulkanBackend::kWarmO},
                                                        {"qkv", VulkanBackend::kWarmQkv}};
    for (const auto &[value, which] : values) {
        const test::ScopedEnv warm("MST_VULKAN_L2_WARM", value);
        const test::ScopedEnv groups("MST_VULKAN_L2_WARM_GROUPS", "32");
        const auto model = load_model(dir, options);
        auto *vk = dynamic_cast<VulkanBackend *>(model->backend.get());
        ASSERT_NE(vk, nullptr);
        EXPECT_EQ(vk->l2_warm(), which) << value;
        EXPECT_EQ(vk->l2_warm_groups(), 32u) << value;
    }
    for (const auto &[name, value] : {std::pair{"MST_VULKAN_L2_WARM", "yes"}, std::pair{"MST_VULKAN_L2_WARM", "2"},
                                      std::pair{"MST_VULKAN_L2_WARM_GROUPS", "0"},
                                      std::pair{"MST_VULKAN_L2_WARM_GROUPS", "64x"}}) {
        const test::ScopedEnv env(name, value);
        EXPECT_THROW(load_model(dir, options), Error) << name << "=" << value;
    }
}

TEST_P(VulkanL2Warm, NamesItsSettings) {
    EXPECT_STREQ(VulkanBackend::l2_warm_name(0), "off");
    EXPECT_STREQ(VulkanBackend::l2_warm_name(VulkanBackend::kWarmO), "o");
    EXPECT_STREQ(VulkanBackend::l2_warm_name(VulkanBackend::kWarmQkv), "qkv");
    EXPECT_STREQ(VulkanBackend::l2_warm_name(VulkanBackend::kWarmO | VulkanBackend::kWarmQkv), "o+qkv");
}

INSTANTIATE_TEST_SUITE_P(Memory, VulkanL2Warm, ::testing::Values(false, true), test::memory_kind_name);

#else

TEST(VulkanL2Warm, NeedsTheVulkanBackend) { GTEST_SKIP() << "this build has no Vulkan backend"; }

#endif

}  // namespace
}  // namespace mst
