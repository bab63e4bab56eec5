// Expert copies on the transfer lane (backends/vulkan/transfer_lane.h, docs/device_graph.md
// "Expert copies on a transfer queue"): a compute submission waits on the lane's timeline
// semaphore for exactly the copies its commands read: a layer's misses before its
// products, a guess copied ahead only in the submission that uses it, not in the one
// kicked beside it; a guess no submission read has still run when the host's wait
// returns; the outputs equal those of every copy on the compute queue
// (MST_VULKAN_TRANSFER_QUEUE=0). Lavapipe has one queue: the lane submits to it, with the
// same semaphore, so every wait and signal here is the one a discrete GPU's transfer
// queue gets. A discrete GPU's upload path (MST_VULKAN_SEPARATE_MEMORY=1). Skipped without
// a Vulkan device.
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

// Experts 0 and 1 of layer 0, 2 and 3 of layer 1 (a guess is for the next layer).
struct Experts {
    test::Q4ExpertStore q{1, kExperts, kHidden, kInter, 21,
                          [](int64_t, int64_t e, int64_t which) { return make_expert_key(e / 2, e, which); }};
    std::vector<WeightView> parts(std::initializer_list<int> experts) const {
        std::vector<WeightView> p;
        for (int e : experts) p.insert(p.end(), {q.gate[0][size_t(e)], q.up[0][size_t(e)], q.down[0][size_t(e)]});
        return p;
    }
};

void run_experts(Backend &b, const Experts &m, std::initializer_list<int> experts, const std::vector<float> &h,
                 std::vector<float> &out) {
    static const int64_t token0 = 0;
    static const float weight = 0.5f;
    std::vector<SwigluExpertUse> uses;
    for (int e : experts) {
        SwigluExpertUse u;
        u.gate = m.q.gate[0][size_t(e)];
        u.up = m.q.up[0][size_t(e)];
        u.down = m.q.down[0][size_t(e)];
        u.tokens = &token0;
        u.weights = &weight;
        u.n = 1;
        uses.push_back(u);
    }
    std::fill(out.begin(), out.end(), 0.0f);
    b.routed_swiglu(h.data(), out.data(), 1, kHidden, uses.data(), uses.size());
}

std::unique_ptr<VulkanBackend> open_backend(bool lane, std::string &why) {
    setenv("MST_VULKAN_SEPARATE_MEMORY", "1", 1);
    if (!lane) setenv("MST_VULKAN_TRANSFER_QUEUE", "0", 1);
    std::unique_ptr<VulkanBackend> b;
    try {
        BackendOptions o;
        o.gpu_expert_cache_bytes = 64ull << 20;
        b = std::make_unique<VulkanBackend>(o, false);
    } catch (const Error &e) {
        why = e.what();
    }
    unsetenv("MST_VULKAN_SEPARATE_MEMORY");
    unsetenv("MST_VULKAN_TRANSFER_QUEUE");
    return b;
}

uint64_t semaphore_value(const CommandStream &s) {
    uint64_t v = 0;
    const VulkanContext &ctx = s.context();
    EXPECT_EQ(ctx.semaphore_counter_value()(ctx.device(), s.transfer().semaphore(), &v), VK_SUCCESS);
    return v;
}

TEST(VulkanTransferQueue, EachSubmissionWaitsForExactlyTheCopiesItReads) {
    const Experts m;
    std::string why;
    const auto gpu = open_backend(true, why);
    if (!gpu) GTEST_SKIP() << "no Vulkan device found: " << why;
    if (!gpu->stream().transfer_lane()) GTEST_SKIP() << "no transfer lane: " << gpu->stream().context().transfer_queue_kind();
    if (!gpu->import_host_memory(m.q.store.data(), m.q.store.size(), why))
        GTEST_SKIP() << "this device cannot import host memory: " << why;
    const CommandStream &s = gpu->stream();
    const std::vector<float> h = random_floats(size_t(kHidden), 5);
    std::vector<float> a(static_cast<size_t>(kHidden)), b(static_cast<size_t>(kHidden));
    // A layer's misses as one batch and one submission behind it (each missed expert's
    // copies apart: test_vulkan_stream_overlap.cpp).
    gpu->set_stream_overlap(false);

    gpu->begin_batch();
    // Layer 0's misses: one batch on the lane (value 1), submitted when the first product
    // reads a slot; the products' submission (kicked at the op's end) waits for it.
    run_experts(*gpu, m, {0, 1}, h, a);
    EXPECT_EQ(s.transfer().submissions(), 1u);
    EXPECT_EQ(s.transfer().last_value(), 1u);
    EXPECT_EQ(s.compute_waited_value(), 1u);
    EXPECT_EQ(s.semaphore_waits(), 1u);
    // The guess for layer 1 goes out at prefetch's kick (value 2) and nothing waits for it
    // yet: the kicked products do not read it.
    EXPECT_EQ(gpu->prefetch_experts(m.parts({2})), 3u);
    EXPECT_EQ(s.transfer().submissions(), 2u);
    EXPECT_EQ(s.transfer().last_value(), 2u);
    EXPECT_EQ(s.compute_waited_value(), 1u) << "a submission that does not read the guess waited for it";
    // Layer 1 uses the guess (a hit, no copy): its products' submission waits for value 2.
    run_experts(*gpu, m, {2}, h, b);
    EXPECT_EQ(s.transfer().submissions(), 2u) << "the guess was copied again";
    EXPECT_EQ(s.compute_waited_value(), 2u) << "the products that read the guess did not wait for its copy";
    EXPECT_EQ(s.semaphore_waits(), 2u);
    // A guess nothing reads (layer 1's expert 3): the host's wait covers it all the same,
    // since the slots and sources it uses are reused after that wait.
    EXPECT_EQ(gpu->prefetch_experts(m.parts({3})), 3u);
    EXPECT_EQ(s.transfer().last_value(), 3u);
    gpu->end_batch();
    EXPECT_EQ(s.compute_waited_value(), 2u);
    EXPECT_EQ(semaphore_value(s), 3u) << "the host's wait returned before an unread guess's copy ran";
    EXPECT_EQ(gpu->device_expert_cache_stats().prefetch_used, 3u);

    // The same outputs with every copy on the compute queue.
    const auto one_queue = open_backend(false, why);
    ASSERT_TRUE(one_queue) << why;
    EXPECT_FALSE(one_queue->stream().transfer_lane());
    ASSERT_TRUE(one_queue->import_host_memory(m.q.store.data(), m.q.store.size(), why)) << why;
    std::vector<float> a0(static_cast<size_t>(kHidden)), b0(static_cast<size_t>(kHidden));
    one_queue->begin_batch();
    run_experts(*one_queue, m, {0, 1}, h, a0);
    one_queue->prefetch_experts(m.parts({2}));
    run_experts(*one_queue, m, {2}, h, b0);
    one_queue->end_batch();
    EXPECT_EQ(a, a0);
    EXPECT_EQ(b, b0);
    EXPECT_EQ(one_queue->stream().transfer().submissions(), 0u);
    EXPECT_EQ(one_queue->stream().semaphore_waits(), 0u);
}

TEST(VulkanTransferQueue, ResultsReadRightAfterTheCopiesAreTheCopiedExperts) {
    // Fresh slots each round (the cache is cleared by a new backend): the products read
    // slots that only the lane's copies filled, so output equal to the compute queue's means
    // the copies had landed when the products ran, round after round.
    const Experts m;
    std::string why;
    for (int round = 0; round < 3; ++round) {
        const auto lane = open_backend(true, why);
        if (!lane) GTEST_SKIP() << "no Vulkan device found: " << why;
        const auto one_queue = open_backend(false, why);
        ASSERT_TRUE(one_queue) << why;
        const std::vector<float> h = random_floats(size_t(kHidden), uint32_t(40 + round));
        std::vector<float> x(static_cast<size_t>(kHidden)), y(static_cast<size_t>(kHidden));
        for (VulkanBackend *b : {lane.get(), one_queue.get()}) {
            std::vector<float> &out = b == lane.get() ? x : y;
            b->begin_batch();
            b->prefetch_experts(m.parts({2, 3}));
            run_experts(*b, m, {0, 1, 2, 3}, h, out);
            b->end_batch();
        }
        EXPECT_EQ(x, y) << "round " << round;
        EXPECT_EQ(lane->device_expert_cache_stats().prefetch_used, 6u);
    }
}
TEST(VulkanTransferQueue, ASlotGivenBackDuringTheSubmissionIsRefilledInOrderOnTheComputeQueue) {
    // Expert 0's keys seen again with another shape (a model that changed shape) drop its
    // cache entries while this submission's recorded products still read their slots;
    // expert 1's parts, of the old size, then take those slots. Their copies must not run
    // ahead of those reads, so they stay on the compute queue behind a barrier; the lane
    // would order them only before their own readers.
    const Experts m;
    std::string why;
    std::vector<float> with_lane, one_queue;
    for (const bool lane : {true, false}) {
        const auto gpu = open_backend(lane, why);
        if (!gpu) GTEST_SKIP() << "no Vulkan device found: " << why;
        if (lane && !gpu->stream().transfer_lane()) GTEST_SKIP() << "no transfer lane";
        ASSERT_TRUE(gpu->import_host_memory(m.q.store.data(), m.q.store.size(), why)) << why;
        const CommandStream &s = gpu->stream();
        const std::vector<float> h = random_floats(size_t(kHidden), 9);
        std::vector<float> a(static_cast<size_t>(kHidden)), b(static_cast<size_t>(kHidden)),
            c(static_cast<size_t>(kHidden));
        // Expert 0 again with twice the width: any bytes of the store serve as its weights.
        const int64_t wide = 2 * kInter;
        WeightView g{DType::Q4, m.q.store.data(), wide, kHidden}, u = g, d{DType::Q4, m.q.store.data(), kHidden, wide};
        g.expert_key = m.q.gate[0][0].expert_key;
        u.expert_key = m.q.up[0][0].expert_key;
        d.expert_key = m.q.down[0][0].expert_key;
        const int64_t token0 = 0;
        const float weight = 0.5f;
        const SwigluExpertUse reshaped{g, u, d, &token0, &weight, 1};
        gpu->begin_batch();
        run_experts(*gpu, m, {0}, h, a);
        const uint64_t lane_bytes = s.transfer().bytes(), direct = s.direct_bytes();
        gpu->routed_swiglu(h.data(), b.data(), 1, kHidden, &reshaped, 1);
        const uint64_t lane_bytes2 = s.transfer().bytes(), direct2 = s.direct_bytes();
        EXPECT_GT(direct2, direct);
        run_experts(*gpu, m, {1}, h, c);  // takes expert 0's slots, given back just now
        EXPECT_GT(s.direct_bytes(), direct2);
        EXPECT_EQ(s.transfer().bytes(), lane_bytes2) << "a slot recorded work may still read was refilled on the lane";
        gpu->end_batch();
        if (lane) {
            EXPECT_GT(lane_bytes, 0u);
            EXPECT_GT(lane_bytes2, lane_bytes) << "the new shape's parts (fresh slots) took the lane";
        }
        (lane ? with_lane : one_queue) = c;
        EXPECT_EQ(gpu->device_expert_cache_stats().misses, 9u);
    }
    EXPECT_EQ(with_lane, one_queue);
}
#endif

}  // namespace
}  // namespace mst
