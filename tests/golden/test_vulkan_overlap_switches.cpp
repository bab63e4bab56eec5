// The switches that look for a real run's lost overlap (docs/gpu_decode_kernels.md, "Where
// a real run's overlap goes"): MST_VULKAN_KICK_EVERY (which kicks submit), MST_VULKAN_BARRIERS
// (what a barrier between levels names) and MST_VULKAN_PROFILE=levels (timestamps only where
// a barrier already is). Greedy decoding of qwen3_moe_tiny through MoeDecoder on Vulkan must
// give bitwise the same logits under each setting as under the defaults, on the device's own
// memory and on a discrete GPU's path (MST_VULKAN_SEPARATE_MEMORY=1), and each setting must
// show that it took effect: fewer (or no) kicks, the barrier scope asked for with as many
// barriers, a level profile with one level per barrier and per command buffer, kicks and
// replay still on. A bad value of each variable fails the backend's creation naming it.
// Skipped without a Vulkan device.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "expect_error.h"
#include "golden_backends.h"
#include "greedy_after_prompt.h"
#include "model/loaded_model.h"
#include "scoped_env.h"
#include "test_paths.h"

#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/command_stream.h"
#include "backends/vulkan/vulkan_backend.h"
#endif

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN
using test::ScopedEnv;

constexpr int32_t kPositions = 40;  // the golden prompt, then decode steps to here

struct Decoded {
    std::vector<std::vector<float>> logits;  // of each decode step
    // Over the decode steps: waited submissions, kicks, barriers, replayed command buffers.
    uint64_t waits = 0, kicks = 0, barriers = 0, replayed = 0;
    CommandStream::BarrierScope scope = CommandStream::BarrierScope::wide;
    uint32_t kick_every = 0;
    CommandStream::Profile profile = CommandStream::Profile::off;
    uint64_t level_calls = 0, timed = 0;  // the level profile's levels and command buffers
};

// `env`: the variables set while the backend is made (the stream reads them then).
Decoded greedy(const std::vector<std::pair<const char *, const char *>> &env, bool separate_memory) {
    std::vector<std::unique_ptr<ScopedEnv>> set;
    for (const auto &[name, value] : env) set.push_back(std::make_unique<ScopedEnv>(name, value));
    if (separate_memory) set.push_back(std::make_unique<ScopedEnv>("MST_VULKAN_SEPARATE_MEMORY", "1"));
    const std::string dir = test::data_path("qwen3_moe_tiny");
    LoadOptions options;
    options.backend = "vulkan";
    const auto model = load_model(dir, options);
    set.clear();
    auto *vk = dynamic_cast<VulkanBackend *>(model->backend.get());
    EXPECT_NE(vk, nullptr);
    Decoded d;
    if (!vk) return d;
    CommandStream &stream = vk->stream();
    uint64_t waits0 = 0, kicks0 = 0, barriers0 = 0, replayed0 = 0;
    d.logits = test::greedy_after_prompt(*model, dir, kPositions, [&] {
                   waits0 = vk->submissions();
                   kicks0 = stream.kicks();
                   barriers0 = stream.barriers();
                   replayed0 = stream.replayed();
                   stream.clear_level_profile();
               }).logits;
    d.waits = vk->submissions() - waits0;
    d.kicks = stream.kicks() - kicks0;
    d.barriers = stream.barriers() - barriers0;
    d.replayed = stream.replayed() - replayed0;
    d.scope = stream.barrier_scope();
    d.kick_every = stream.kick_every();
    d.profile = stream.profile();
    for (const auto &[label, st] : stream.level_profile()) d.level_calls += st.calls;
    d.timed = stream.submission_profile().timed;
    return d;
}

void expect_same_logits(const Decoded &want, const Decoded &got, const std::string &what) {
    ASSERT_EQ(want.logits.size(), got.logits.size()) << what;
    for (size_t t = 0; t < want.logits.size(); ++t)
        ASSERT_EQ(want.logits[t], got.logits[t]) << what << ": decode step " << t << " changed its logits";
}

class VulkanOverlapSwitches : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override {
        if (const std::string why = golden_suite::backend_unavailable("vulkan"); !why.empty()) GTEST_SKIP() << why;
        defaults_ = greedy({}, GetParam());
        ASSERT_GT(defaults_.kicks, 0u) << "the default decode kicks at every layer";
        EXPECT_EQ(defaults_.kick_every, 1u);
        EXPECT_EQ(defaults_.scope, CommandStream::BarrierScope::wide);
        EXPECT_EQ(defaults_.profile, CommandStream::Profile::off);
    }
    Decoded defaults_;
};

TEST_P(VulkanOverlapSwitches, KickEveryNthKeepsTheLogitsAndSubmitsFewer) {
    for (const uint32_t n : {2u, 3u, 0u}) {
        const std::string value = std::to_string(n);
        const Decoded d = greedy({{"MST_VULKAN_KICK_EVERY", value.c_str()}}, GetParam());
        const std::string what = "MST_VULKAN_KICK_EVERY=" + value;
        expect_same_logits(defaults_, d, what);
        EXPECT_EQ(d.kick_every, n) << what;
        // Each step's kicks: every n-th of the default's (one a layer), none with 0.
        const uint64_t steps = defaults_.logits.size(), per_step = defaults_.kicks / steps;
        EXPECT_EQ(d.kicks, n ? per_step / n * steps : 0u) << what;
        // The same levels in fewer command buffers: each kick passed over leaves a
        // pipeline barrier where the next command buffer's start was.
        EXPECT_EQ(d.barriers + d.kicks, defaults_.barriers + defaults_.kicks) << what;
    }
    // MST_VULKAN_NO_KICK=1 is KICK_EVERY=0.
    const Decoded off = greedy({{"MST_VULKAN_NO_KICK", "1"}}, GetParam());
    EXPECT_EQ(off.kick_every, 0u);
    EXPECT_EQ(off.kicks, 0u);
    expect_same_logits(defaults_, off, "MST_VULKAN_NO_KICK=1");
}

TEST_P(VulkanOverlapSwitches, NarrowBarriersKeepTheLogitsAndTheLevels) {
    for (const auto &[value, scope] : {std::pair{"stages", CommandStream::BarrierScope::stages},
                                       std::pair{"ranges", CommandStream::BarrierScope::ranges},
                                       std::pair{"wide", CommandStream::BarrierScope::wide}}) {
        const Decoded d = greedy({{"MST_VULKAN_BARRIERS", value}}, GetParam());
        const std::string what = std::string("MST_VULKAN_BARRIERS=") + value;
        expect_same_logits(defaults_, d, what);
        EXPECT_EQ(d.scope, scope) << what;
        EXPECT_EQ(d.barriers, defaults_.barriers) << what;
        EXPECT_EQ(d.kicks, defaults_.kicks) << what;
    }
}

TEST_P(VulkanOverlapSwitches, TheLevelProfileKeepsTheLogitsKicksAndReplay) {
    const Decoded d = greedy({{"MST_VULKAN_PROFILE", "levels"}}, GetParam());
    if (d.profile == CommandStream::Profile::off) GTEST_SKIP() << "the device has no timestamps on its compute queue";
    expect_same_logits(defaults_, d, "MST_VULKAN_PROFILE=levels");
    EXPECT_EQ(d.profile, CommandStream::Profile::levels);
    EXPECT_EQ(d.kicks, defaults_.kicks) << "kicks stay on under the level profile";
    EXPECT_GT(d.replayed, 0u) << "replay stays on under the level profile";
    EXPECT_EQ(d.timed, d.kicks + d.waits) << "every command buffer timed";
    // A level ends at each barrier and at each command buffer's end.
    EXPECT_EQ(d.level_calls, d.barriers + d.timed);
}

INSTANTIATE_TEST_SUITE_P(Memory, VulkanOverlapSwitches, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool> &p) { return p.param ? "Discrete" : "DeviceOwn"; });

TEST(VulkanOverlapSettings, ABadValueFailsTheBackendNamingTheVariable) {
    if (const std::string why = golden_suite::backend_unavailable("vulkan"); !why.empty()) GTEST_SKIP() << why;
    const std::vector<std::pair<const char *, const char *>> bad = {
        {"MST_VULKAN_KICK_EVERY", "x"}, {"MST_VULKAN_KICK_EVERY", "-1"}, {"MST_VULKAN_KICK_EVERY", "2 "},
        {"MST_VULKAN_BARRIERS", "narrow"}, {"MST_VULKAN_PROFILE", "level"}, {"MST_VULKAN_PROFILE", "3"}};
    for (const auto &[name, value] : bad) {
        const ScopedEnv env(name, value);
        test::expect_error([] { VulkanBackend b(BackendOptions{}, false); }, MST_ERR_INVALID_ARGUMENT,
                           {std::string(name) + "='" + value + "'", "expected"});
    }
    const ScopedEnv no_kick("MST_VULKAN_NO_KICK", "1"), every("MST_VULKAN_KICK_EVERY", "2");
    test::expect_error([] { VulkanBackend b(BackendOptions{}, false); }, MST_ERR_INVALID_ARGUMENT,
                       {"MST_VULKAN_KICK_EVERY='2' contradicts MST_VULKAN_NO_KICK=1"});
}

#else

TEST(VulkanOverlapSwitches, NeedsTheVulkanBackend) { GTEST_SKIP() << "this build has no Vulkan backend"; }

#endif

}  // namespace
}  // namespace mst
