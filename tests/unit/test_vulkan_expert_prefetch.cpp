// Guessed experts copied into the GPU expert cache ahead of need (VulkanBackend::
// prefetch_experts, docs/device_graph.md "Guessed experts copied ahead into the GPU
// cache"): a guess never evicts an expert the current submission's recorded work uses (it
// is skipped, and counted) nor one of the guessed layer's own, a guess copied ahead is a hit for the layer that then needs
// it (counted as used), one evicted before any use is counted as wasted, and the outputs
// equal those of the layer's own copies. On lavapipe with a discrete GPU's upload path
// (MST_VULKAN_SEPARATE_MEMORY=1). Skipped without a Vulkan device.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "core/error.h"
#include "cpu_op_fixture.h"
#include "q4_expert_store.h"
#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/vulkan_backend.h"
#endif

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN
using test::random_floats;

constexpr int64_t kHidden = 64, kInter = 32, kExperts = 4;
// Experts 0 and 1 belong to layer 0, 2 and 3 to layer 1 (a guess is for another layer than
// the one computing). A Q4 part of these shapes is 1152 bytes; the cache keeps each in a 256-byte-rounded slot.
constexpr uint64_t kPartSlot = 1280, kExpertSlot = 3 * kPartSlot;

struct Experts {
    test::Q4ExpertStore q{1, kExperts, kHidden, kInter, 7, [](int64_t, int64_t e, int64_t which) {
                              return make_expert_key(e / 2, e, which);  // experts 0, 1 of layer 0; 2, 3 of layer 1
                          }};
    const std::vector<WeightView> &gate = q.gate[0], &up = q.up[0], &down = q.down[0];
    std::vector<WeightView> parts(std::initializer_list<int> experts) const {
        std::vector<WeightView> p;
        for (int e : experts) p.insert(p.end(), {gate[size_t(e)], up[size_t(e)], down[size_t(e)]});
        return p;
    }
};

// One token through `experts` (weight 1/n each), recorded into the backend's current batch.
void run_experts(Backend &b, const Experts &m, std::initializer_list<int> experts, const std::vector<float> &h,
                 std::vector<float> &out) {
    static const int64_t token0 = 0;
    static const float weight = 0.5f;
    std::vector<SwigluExpertUse> uses;
    for (int e : experts) {
        SwigluExpertUse u;
        u.gate = m.gate[size_t(e)];
        u.up = m.up[size_t(e)];
        u.down = m.down[size_t(e)];
        u.tokens = &token0;
        u.weights = &weight;
        u.n = 1;
        uses.push_back(u);
    }
    std::fill(out.begin(), out.end(), 0.0f);
    b.routed_swiglu(h.data(), out.data(), 1, kHidden, uses.data(), uses.size());
}

std::unique_ptr<VulkanBackend> open_backend(uint64_t budget, std::string &why) {
    setenv("MST_VULKAN_SEPARATE_MEMORY", "1", 1);
    std::unique_ptr<VulkanBackend> b;
    try {
        BackendOptions o;
        o.gpu_expert_cache_bytes = budget;
        b = std::make_unique<VulkanBackend>(o, false);
    } catch (const Error &e) {
        why = e.what();
    }
    unsetenv("MST_VULKAN_SEPARATE_MEMORY");
    return b;
}

TEST(VulkanExpertPrefetch, AGuessNeverEvictsWhatTheCurrentWorkUses) {
    const Experts m;
    std::string why;
    const auto gpu = open_backend(2 * kExpertSlot, why);  // room for two experts
    if (!gpu) GTEST_SKIP() << "no Vulkan device found: " << why;
    const std::vector<float> h = random_floats(size_t(kHidden), 3);
    std::vector<float> out(static_cast<size_t>(kHidden)), again(static_cast<size_t>(kHidden));
    gpu->begin_batch();
    run_experts(*gpu, m, {0, 1}, h, out);  // layer 0 fills the cache with parts this submission uses
    EXPECT_EQ(gpu->prefetch_experts(m.parts({2, 3})), 0u) << "a guess evicted the current layer's experts";
    DeviceExpertCacheStats s = gpu->device_expert_cache_stats();
    EXPECT_EQ(s.prefetch_skipped, 6u);
    EXPECT_EQ(s.prefetched, 0u);
    EXPECT_EQ(s.evictions, 0u);
    gpu->end_batch();
    // The submission has run: its experts may go now, least recently used first.
    gpu->begin_batch();
    EXPECT_EQ(gpu->prefetch_experts(m.parts({2})), 3u);
    EXPECT_EQ(gpu->prefetch_experts(m.parts({2})), 0u) << "on the device already";
    run_experts(*gpu, m, {1, 2}, h, again);  // 1 kept, 2 copied ahead: no copy now
    gpu->end_batch();
    s = gpu->device_expert_cache_stats();
    EXPECT_EQ(s.prefetched, 3u);
    EXPECT_EQ(s.prefetch_used, 3u);
    EXPECT_EQ(s.evictions, 3u) << "expert 0, the least recently used, made room";
    EXPECT_EQ(s.misses, 6u) << "only the first call's experts were copied when needed";
    EXPECT_EQ(s.bytes_uploaded, 3 * kExpertSlot);
    EXPECT_EQ(s.prefetch_bytes, kExpertSlot);

    // A guess does not evict its own layer's parts either: with layer 0's expert 1 in use
    // and layer 1's expert 2 the only other, a guess of layer 1's expert 3 is skipped.
    gpu->begin_batch();
    run_experts(*gpu, m, {1}, h, again);
    EXPECT_EQ(gpu->prefetch_experts(m.parts({3})), 0u);
    gpu->end_batch();
    EXPECT_EQ(gpu->device_expert_cache_stats().prefetch_skipped, 9u);

    // A guess evicted before any use is wasted.
    gpu->begin_batch();
    EXPECT_EQ(gpu->prefetch_experts(m.parts({3})), 3u);  // evicts 1
    gpu->end_batch();
    gpu->begin_batch();
    run_experts(*gpu, m, {0, 1}, h, out);  // needs both slots: 3 (the older guess) and 2 go
    gpu->end_batch();
    s = gpu->device_expert_cache_stats();
    EXPECT_EQ(s.prefetched, 6u);
    EXPECT_EQ(s.prefetch_used, 3u);
    EXPECT_EQ(s.prefetch_wasted, 3u);
}

TEST(VulkanExpertPrefetch, OutputsEqualTheLayersOwnCopies) {
    const Experts m;
    std::string why;
    const auto with = open_backend(2 * kExpertSlot, why);
    if (!with) GTEST_SKIP() << "no Vulkan device found: " << why;
    const auto without = open_backend(2 * kExpertSlot, why);
    ASSERT_TRUE(without) << why;
    const std::vector<float> h = random_floats(size_t(kHidden), 11);
    const std::initializer_list<int> layers[] = {{0, 1}, {2, 3}, {1, 2}, {3, 0}};
    for (size_t i = 0; i < std::size(layers); ++i) {
        std::vector<float> a(static_cast<size_t>(kHidden)), b(static_cast<size_t>(kHidden));
        with->begin_batch();
        if (i > 0) with->prefetch_experts(m.parts(layers[i]));  // the guess made a layer ago, right
        with->end_batch();
        with->begin_batch();
        run_experts(*with, m, layers[i], h, a);
        with->end_batch();
        without->begin_batch();
        run_experts(*without, m, layers[i], h, b);
        without->end_batch();
        EXPECT_EQ(a, b) << "call " << i;
    }
    // Every guess was right: each copied ahead was used, none wasted.
    const DeviceExpertCacheStats s = with->device_expert_cache_stats();
    EXPECT_GT(s.prefetched, 0u);
    EXPECT_EQ(s.prefetch_used, s.prefetched);
    EXPECT_EQ(s.prefetch_wasted, 0u);
    EXPECT_EQ(without->device_expert_cache_stats().prefetched, 0u);
}

TEST(VulkanExpertPrefetch, TheSwitchTurnsItOffAndABadValueIsAnError) {
    const Experts m;
    std::string why;
    setenv("MST_VULKAN_EXPERT_PREFETCH", "0", 1);
    const auto off = open_backend(4 * kExpertSlot, why);
    unsetenv("MST_VULKAN_EXPERT_PREFETCH");
    if (!off) GTEST_SKIP() << "no Vulkan device found: " << why;
    EXPECT_FALSE(off->expert_prefetch_enabled());
    EXPECT_EQ(off->prefetch_experts(m.parts({0})), 0u);
    EXPECT_EQ(off->device_expert_cache_stats().bytes_uploaded, 0u);
    setenv("MST_VULKAN_EXPERT_PREFETCH", "yes", 1);
    const auto bad = open_backend(4 * kExpertSlot, why);
    unsetenv("MST_VULKAN_EXPERT_PREFETCH");
    EXPECT_FALSE(bad);
    EXPECT_NE(why.find("MST_VULKAN_EXPERT_PREFETCH"), std::string::npos) << why;
}
#endif

}  // namespace
}  // namespace mst
