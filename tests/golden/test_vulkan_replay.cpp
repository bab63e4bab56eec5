// Replayed decode steps (CommandStream's replay, docs/device_graph.md "Recorded once,
// replayed"): greedy decoding through MoeDecoder on Vulkan gives the same ids and bitwise
// the same logits whether each step's command buffers are recorded afresh
// (MST_VULKAN_REPLAY=0) or recorded once and submitted again, over enough positions to
// cross the split attention's block buckets (one block, then 2, 3-4 and 5-8 blocks of 32
// keys), and most steps are in fact replayed; on the device's own memory and on a discrete
// GPU's path (MST_VULKAN_SEPARATE_MEMORY=1). Skipped without a Vulkan device.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "golden_backends.h"
#include "greedy_after_prompt.h"
#include "model/loaded_model.h"
#include "test_paths.h"

#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/command_stream.h"
#include "backends/vulkan/vulkan_backend.h"
#endif

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN
struct Decoded {
    std::vector<int32_t> ids;
    std::vector<std::vector<float>> logits;  // of each decode step
    uint64_t replayed = 0, recorded = 0;     // submissions of the decode steps
};

Decoded greedy(const std::string &dir, bool replay, bool separate_memory, int32_t positions) {
    // A discrete GPU's memory path (results copied to host memory, inputs to the device) on
    // any device: the variable is read when the backend is made.
    if (separate_memory) setenv("MST_VULKAN_SEPARATE_MEMORY", "1", 1);
    LoadOptions options;
    options.backend = "vulkan";
    const auto model = load_model(dir, options);
    unsetenv("MST_VULKAN_SEPARATE_MEMORY");
    auto *vk = dynamic_cast<VulkanBackend *>(model->backend.get());
    EXPECT_NE(vk, nullptr);
    Decoded d;
    if (!vk) return d;
    vk->stream().set_replay(replay);
    uint64_t replayed0 = 0, recorded0 = 0;
    test::GreedySteps steps = test::greedy_after_prompt(*model, dir, positions, [&] {
        replayed0 = vk->stream().replayed();
        recorded0 = vk->stream().recorded();
    });
    d.ids = std::move(steps.ids);
    d.logits = std::move(steps.logits);
    d.replayed = vk->stream().replayed() - replayed0;
    d.recorded = vk->stream().recorded() - recorded0;
    return d;
}
#endif

class VulkanReplay : public ::testing::TestWithParam<std::string> {};

TEST_P(VulkanReplay, ReplayedDecodeEqualsRecordedDecode) {
    if (const std::string why = golden_suite::backend_unavailable("vulkan"); !why.empty()) GTEST_SKIP() << why;
#ifdef MST_HAVE_VULKAN
    const std::string dir = test::data_path(GetParam());
    constexpr int32_t kPositions = 200;  // 1, 2, 4 and 8 blocks of 32 keys
    for (const bool separate : {false, true}) {
        SCOPED_TRACE(separate ? "discrete memory path" : "the device's own memory");
        const Decoded fresh = greedy(dir, false, separate, kPositions);
        const Decoded replayed = greedy(dir, true, separate, kPositions);
        EXPECT_EQ(fresh.replayed, 0u);
        ASSERT_EQ(fresh.ids, replayed.ids);
        ASSERT_EQ(fresh.logits.size(), replayed.logits.size());
        for (size_t t = 0; t < fresh.logits.size(); ++t)
            ASSERT_EQ(fresh.logits[t], replayed.logits[t]) << "decode step " << t << ": replay changed the logits";
        // Steps re-record only at the first positions (attention.comp's push constants), when
        // the split's block count passes a power of two, and when the KV copy grows.
        EXPECT_GT(replayed.replayed, 4 * replayed.recorded) << replayed.replayed << " replayed, " << replayed.recorded
                                                            << " recorded";
    }
#endif
}

INSTANTIATE_TEST_SUITE_P(Architectures, VulkanReplay, ::testing::Values("qwen3_moe_tiny", "mixtral_tiny"));

}  // namespace
}  // namespace mst
