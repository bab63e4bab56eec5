// A streamed layer's copies and products overlapped (backends/vulkan/op_experts.cpp,
// docs/device_graph.md "Hits first, each miss on its own copies"): each missed expert's
// copies are a lane batch of their own, submitted at its lookup; the hits' products go in a
// command buffer that waits for no copy, and each miss's products in one that waits for its
// own copies. The outputs equal those of MST_VULKAN_STREAM_OVERLAP=0 (every product behind
// all of the layer's copies) bit for bit, for one token and for several tokens that use
// different experts (gathered rows, SiLU per expert). A discrete GPU's upload path
// (MST_VULKAN_SEPARATE_MEMORY=1) on lavapipe, whose one queue takes the lane's batches with
// the same semaphore. Skipped without a Vulkan device.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "core/error.h"
#include "cpu_op_fixture.h"
#include "expect_error.h"
#include "q4_expert_store.h"
#include "scoped_env.h"
#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/vulkan_backend.h"
#endif

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN
using test::random_floats;
using test::ScopedEnv;

constexpr int64_t kHidden = 64, kInter = 32, kExperts = 6;

// Token t of n uses the experts listed for it, each with its own weight.
struct Routing {
    std::vector<std::vector<int>> experts_of_token;
};

void run_layer(Backend &b, const test::Q4ExpertStore &q, const Routing &r, const std::vector<float> &h,
               std::vector<float> &out) {
    const int64_t n = int64_t(r.experts_of_token.size());
    std::vector<std::vector<int64_t>> tokens(static_cast<size_t>(kExperts));
    std::vector<std::vector<float>> weights(static_cast<size_t>(kExperts));
    for (int64_t t = 0; t < n; ++t)
        for (int e : r.experts_of_token[size_t(t)]) {
            tokens[size_t(e)].push_back(t);
            weights[size_t(e)].push_back(0.125f * float(e + 1) + 0.01f * float(t));
        }
    std::vector<SwigluExpertUse> uses;
    for (int64_t e = 0; e < kExperts; ++e) {
        if (tokens[size_t(e)].empty()) continue;
        SwigluExpertUse u;
        u.gate = q.gate[0][size_t(e)];
        u.up = q.up[0][size_t(e)];
        u.down = q.down[0][size_t(e)];
        u.tokens = tokens[size_t(e)].data();
        u.weights = weights[size_t(e)].data();
        u.n = int64_t(tokens[size_t(e)].size());
        uses.push_back(u);
    }
    out.assign(size_t(n * kHidden), 0.0f);
    b.routed_swiglu(h.data(), out.data(), n, kHidden, uses.data(), uses.size());
}

std::unique_ptr<VulkanBackend> open_backend(std::string &why) {
    const ScopedEnv separate("MST_VULKAN_SEPARATE_MEMORY", "1");
    try {
        BackendOptions o;
        o.gpu_expert_cache_bytes = 64ull << 20;
        return std::make_unique<VulkanBackend>(o, false);
    } catch (const Error &e) {
        why = e.what();
    }
    return nullptr;
}

struct Counts {
    uint64_t lane_batches, semaphore_waits, kicks, first_copies;
};

Counts counts(VulkanBackend &b) {
    const CommandStream &s = b.stream();
    return {s.transfer().submissions(), s.semaphore_waits(), s.kicks(), s.transfer().first_copies()};
}

TEST(VulkanStreamOverlap, HitsWaitForNoCopyAndEachMissForItsOwn) {
    const test::Q4ExpertStore q{1, kExperts, kHidden, kInter, 31};
    std::string why;
    const auto gpu = open_backend(why);
    if (!gpu) GTEST_SKIP() << "no Vulkan device found: " << why;
    if (!gpu->stream().transfer_lane()) GTEST_SKIP() << "no transfer lane: " << gpu->stream().context().transfer_queue_kind();
    if (!gpu->import_host_memory(q.store.data(), q.store.size(), why))
        GTEST_SKIP() << "this device cannot import host memory: " << why;
    ASSERT_TRUE(gpu->stream_overlap()) << "the switch is on by default";
    const std::vector<float> h = random_floats(size_t(kHidden), 3);
    std::vector<float> warm, out;

    // Expert 2 in the GPU cache first (its copy done at the batch's end).
    gpu->begin_batch();
    run_layer(*gpu, q, Routing{{{2}}}, h, warm);
    gpu->end_batch();

    // Experts 0, 1 and 3 missed, 2 a hit.
    const Counts c0 = counts(*gpu);
    const uint64_t value0 = gpu->stream().transfer().last_value();
    gpu->begin_batch();
    run_layer(*gpu, q, Routing{{{0, 1, 2, 3}}}, h, out);
    const Counts c1 = counts(*gpu);
    EXPECT_EQ(c1.lane_batches - c0.lane_batches, 3u) << "a lane batch per missed expert";
    EXPECT_EQ(gpu->stream().transfer().last_value(), value0 + 3);
    // Four compute command buffers (the hit's products, miss 0's, miss 1's, miss 3's with
    // the combine), of which the three misses' waited on the lane, the last for the last value.
    EXPECT_EQ(c1.kicks - c0.kicks, 4u);
    EXPECT_EQ(c1.semaphore_waits - c0.semaphore_waits, 3u) << "the hit's products waited for a copy";
    EXPECT_EQ(gpu->stream().compute_waited_value(), value0 + 3);
    EXPECT_EQ(c1.first_copies - c0.first_copies, 1u) << "the wait before was followed by one first copy";
    gpu->end_batch();

    // The same layer with the switch off: one lane batch, one compute command buffer behind it.
    const auto off = open_backend(why);
    ASSERT_TRUE(off) << why;
    off->set_stream_overlap(false);
    ASSERT_TRUE(off->import_host_memory(q.store.data(), q.store.size(), why)) << why;
    std::vector<float> warm_off, out_off;
    off->begin_batch();
    run_layer(*off, q, Routing{{{2}}}, h, warm_off);
    off->end_batch();
    const Counts d0 = counts(*off);
    off->begin_batch();
    run_layer(*off, q, Routing{{{0, 1, 2, 3}}}, h, out_off);
    const Counts d1 = counts(*off);
    off->end_batch();
    EXPECT_EQ(d1.lane_batches - d0.lane_batches, 1u);
    EXPECT_EQ(d1.kicks - d0.kicks, 1u);
    EXPECT_EQ(d1.semaphore_waits - d0.semaphore_waits, 1u);
    EXPECT_EQ(warm, warm_off);
    EXPECT_EQ(out, out_off) << "the overlapped products differ from those behind all copies";
}

TEST(VulkanStreamOverlap, MissesInGroupsShareALaneBatchAndACommandBuffer) {
    // MST_VULKAN_STREAM_GROUP=2: three misses make two lane batches (0 and 1, then 3) and two
    // command buffers of their products behind the hits', each waiting for its own batch.
    const test::Q4ExpertStore q{1, kExperts, kHidden, kInter, 31};
    std::string why;
    std::vector<float> outs[2];
    for (const uint32_t group : {2u, 1u}) {
        const auto gpu = open_backend(why);
        if (!gpu) GTEST_SKIP() << "no Vulkan device found: " << why;
        if (!gpu->stream().transfer_lane()) GTEST_SKIP() << "no transfer lane";
        ASSERT_TRUE(gpu->import_host_memory(q.store.data(), q.store.size(), why)) << why;
        gpu->set_stream_group(group);
        const std::vector<float> h = random_floats(size_t(kHidden), 3);
        std::vector<float> warm;
        gpu->begin_batch();
        run_layer(*gpu, q, Routing{{{2}}}, h, warm);
        gpu->end_batch();
        const Counts c0 = counts(*gpu);
        gpu->begin_batch();
        run_layer(*gpu, q, Routing{{{0, 1, 2, 3}}}, h, outs[group - 1]);
        const Counts c1 = counts(*gpu);
        gpu->end_batch();
        EXPECT_EQ(c1.lane_batches - c0.lane_batches, group == 2 ? 2u : 3u) << "group " << group;
        EXPECT_EQ(c1.kicks - c0.kicks, group == 2 ? 3u : 4u) << "group " << group;
        EXPECT_EQ(c1.semaphore_waits - c0.semaphore_waits, group == 2 ? 2u : 3u) << "group " << group;
    }
    EXPECT_EQ(outs[0], outs[1]);
}

TEST(VulkanStreamOverlap, OutputsEqualTheSwitchOffForEveryMixOfHitsAndMisses) {
    // Rounds of layers on one backend per setting, so that the GPU cache holds some of the
    // experts (hits) and not others (misses) in every mix, several tokens with different
    // experts (rows gathered per expert), an expert used by every token, all misses, all hits.
    const test::Q4ExpertStore q{1, kExperts, kHidden, kInter, 77};
    const std::vector<Routing> layers = {
        Routing{{{0, 4}}},                           // all misses
        Routing{{{0, 1, 4, 5}}},                     // 0 and 4 hits, 1 and 5 misses
        Routing{{{0, 2}, {2, 3}, {1, 2, 5}}},        // three tokens, expert 2 on all
        Routing{{{5, 1}, {0}}},                      // all hits
        Routing{{{3, 4}, {4}, {0, 3}, {2, 1, 5}}},   // four tokens
    };
    std::string why;
    // Overlap with a miss a group, with three a group, and off.
    std::vector<std::vector<float>> outs[3];
    for (int setting = 0; setting < 3; ++setting) {
        const auto gpu = open_backend(why);
        if (!gpu) GTEST_SKIP() << "no Vulkan device found: " << why;
        if (!gpu->stream().transfer_lane()) GTEST_SKIP() << "no transfer lane";
        ASSERT_TRUE(gpu->import_host_memory(q.store.data(), q.store.size(), why)) << why;
        gpu->set_stream_overlap(setting < 2);
        gpu->set_stream_group(setting == 1 ? 3 : 1);
        for (size_t l = 0; l < layers.size(); ++l) {
            const std::vector<float> h =
                random_floats(size_t(kHidden) * layers[l].experts_of_token.size(), uint32_t(100 + l));
            std::vector<float> out;
            gpu->begin_batch();
            run_layer(*gpu, q, layers[l], h, out);
            gpu->end_batch();
            outs[setting].push_back(out);
        }
    }
    ASSERT_EQ(outs[0].size(), layers.size());
    for (size_t l = 0; l < layers.size(); ++l) {
        EXPECT_EQ(outs[0][l], outs[2][l]) << "layer " << l << ", a miss a group";
        EXPECT_EQ(outs[1][l], outs[2][l]) << "layer " << l << ", three misses a group";
    }
}

TEST(VulkanStreamOverlap, TheSwitchesTakeTheirValuesAndRefuseOthers) {
    {
        const ScopedEnv env("MST_VULKAN_STREAM_OVERLAP", "0");
        std::string why;
        const auto gpu = open_backend(why);
        if (!gpu) GTEST_SKIP() << "no Vulkan device found: " << why;
        EXPECT_FALSE(gpu->stream_overlap());
    }
    {
        const ScopedEnv env("MST_VULKAN_STREAM_OVERLAP", "1");
        std::string why;
        const auto gpu = open_backend(why);
        ASSERT_TRUE(gpu) << why;
        EXPECT_TRUE(gpu->stream_overlap());
    }
    {
        const ScopedEnv env("MST_VULKAN_STREAM_GROUP", "3");
        std::string why;
        const auto gpu = open_backend(why);
        ASSERT_TRUE(gpu) << why;
        EXPECT_EQ(gpu->stream_group(), 3u);
    }
    for (const char *bad : {"0", "two", "2x", "-1"}) {
        const ScopedEnv env("MST_VULKAN_STREAM_GROUP", bad);
        test::expect_error([] { VulkanBackend b(BackendOptions{}, false); }, MST_ERR_INVALID_ARGUMENT,
                           {"MST_VULKAN_STREAM_GROUP='" + std::string(bad) + "'", "missed experts"});
    }
    const ScopedEnv env("MST_VULKAN_STREAM_OVERLAP", "yes");
    test::expect_error([] { VulkanBackend b(BackendOptions{}, false); }, MST_ERR_INVALID_ARGUMENT,
                       {"MST_VULKAN_STREAM_OVERLAP='yes'"});
}
#endif

}  // namespace
}  // namespace mst
