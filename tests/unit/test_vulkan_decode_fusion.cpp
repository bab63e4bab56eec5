// The Vulkan backend's decode fusions (docs/gpu_decode_kernels.md, "Fewer dispatches per
// layer"; MST_VULKAN_DECODE_FUSION): copy_rows of contiguous rows records no command, its
// result being the source's device bytes; an op that then writes over either side gets a copy
// of its own; rope's cos/sin table goes to the device once per batch. Each against the CPU
// backend at odd sizes, with the fusion on and off. Every test runs on the device's memory and
// on a discrete GPU's path (test::VulkanMemorySuite), where a weight's first use records its
// copy: a fused count taken on fresh weights there finds the fusion off (the router top-k test
// did on an H100). Without a Vulkan device every test is skipped, saying so.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "cpu_op_fixture.h"

#ifdef MST_HAVE_VULKAN
#include "vulkan_memory_suite.h"
#endif

namespace mst {
namespace {

using test::random_floats;

#ifdef MST_HAVE_VULKAN

class VulkanDecodeFusion : public test::VulkanMemorySuite {
protected:
    void TearDown() override {
        if (gpus_[GetParam()]) gpu().set_decode_fusion(true);
    }
};

// Halves of 3 heads of 18 (9 angles: no workgroup size divides it), position 7.
struct Rope {
    std::vector<float> inv_freq;
    RopeParams p;
    int32_t position = 7;
    explicit Rope(int32_t rotary_dim) : inv_freq(size_t(rotary_dim / 2)) {
        for (size_t i = 0; i < inv_freq.size(); ++i)
            inv_freq[i] = std::pow(10000.0f, -2.0f * float(i) / float(rotary_dim));
        p.rotary_dim = rotary_dim;
        p.inv_freq = inv_freq.data();
    }
};

constexpr int64_t kHeads = 3, kHeadDim = 18;

TEST_P(VulkanDecodeFusion, ContiguousCopyRowsRecordNoCommandAndEqualTheCpu) {
    // The source is a pending result of the batch (an add), as the KV append's k and v are.
    const int64_t n = 1001;
    const std::vector<float> x0 = random_floats(size_t(n), 3), y = random_floats(size_t(n), 4);
    auto run = [&](Backend &b) {
        std::vector<float> x = x0, one(37), three(size_t(3 * 37)), strided(size_t(4 * 13));
        BackendBatch scope(b);
        b.add(x.data(), y.data(), n);
        b.copy_rows(x.data() + 5, 999, one.data(), 1, 37);       // one row: any stride
        b.copy_rows(x.data() + 100, 37, three.data(), 3, 37);    // stride == row: contiguous
        b.copy_rows(x.data() + 1, 17, strided.data(), 4, 13);    // gaps: a dispatch
        b.add(one.data(), y.data(), 37);                          // a copy's result read again
        b.sync();
        std::vector<float> out = x;
        for (const auto *v : {&one, &three, &strided}) out.insert(out.end(), v->begin(), v->end());
        return out;
    };
    const std::vector<float> want = run(cpu_);
    for (const bool fused : {true, false}) {
        gpu().set_decode_fusion(fused);
        const uint64_t aliased0 = gpu().copy_rows_aliased();
        EXPECT_EQ(run(gpu()), want) << "fusion " << fused;
        EXPECT_EQ(gpu().copy_rows_aliased() - aliased0, fused ? 2u : 0u) << "fusion " << fused;
    }
}

TEST_P(VulkanDecodeFusion, AWriteOverACopysSourceOrResultLeavesTheOtherAsItWas) {
    // As the KV append and rope: k copied head by head into the cache rows, then k rotated
    // in place (the order reversed), and a cache row rotated in place after its copy. With
    // the copy's result sharing k's device bytes, the in-place rope must not reach the other.
    const Rope rope(kHeadDim);
    const std::vector<float> k0 = random_floats(size_t(kHeads * kHeadDim), 5), zero(k0.size(), 0.0f);
    auto run = [&](Backend &b, bool rotate_source) {
        std::vector<float> k = k0, rows(size_t(kHeads * kHeadDim));
        BackendBatch scope(b);
        b.add(k.data(), zero.data(), int64_t(k.size()));  // k pending on the device
        for (int64_t h = 0; h < kHeads; ++h)
            b.copy_rows(k.data() + h * kHeadDim, kHeads * kHeadDim, rows.data() + h * kHeadDim, 1, kHeadDim);
        if (rotate_source) b.rope(k.data(), 1, kHeads, kHeadDim, &rope.position, rope.p);
        else b.rope(rows.data() + kHeadDim, 1, 1, kHeadDim, &rope.position, rope.p);  // the middle head's row
        b.sync();
        std::vector<float> out = k;
        out.insert(out.end(), rows.begin(), rows.end());
        return out;
    };
    for (const bool rotate_source : {true, false}) {
        const std::vector<float> want = run(cpu_, rotate_source);
        for (const bool fused : {true, false}) {
            gpu().set_decode_fusion(fused);
            const std::vector<float> got = run(gpu(), rotate_source);
            ASSERT_EQ(got.size(), want.size());
            // The copies are exact; the rotated values as test_vulkan_ops' rope bound.
            float worst = 0;
            for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
            EXPECT_LT(worst, 1e-5f) << "rotate " << (rotate_source ? "k" : "a cache row") << ", fusion " << fused;
            // What was not rotated is k as it was, bit for bit: the cache rows when k was
            // rotated; k and the other rows when the middle row was.
            for (size_t i = 0; i < k0.size(); ++i) {
                const bool middle_row = i >= size_t(kHeadDim) && i < size_t(2 * kHeadDim);
                if (rotate_source) {
                    EXPECT_EQ(got[k0.size() + i], k0[i]) << "cache row element " << i << ", fusion " << fused;
                } else {
                    EXPECT_EQ(got[i], k0[i]) << "k element " << i << ", fusion " << fused;
                    if (!middle_row) {
                        EXPECT_EQ(got[k0.size() + i], k0[i]) << "cache row element " << i;
                    }
                }
            }
        }
    }
}

TEST_P(VulkanDecodeFusion, RopeTableGoesToTheDeviceOncePerBatch) {
    // q and k of several layers at one position: one table copy with the fusion on, one
    // per rope off; a sync (scratch reset) or another position copies it again. Both give
    // the same values, within the rope bound of the CPU's.
    const Rope rope(10);  // partial rotation: 10 of 18
    const int32_t other = 12345;
    const std::vector<float> q0 = random_floats(size_t(8 * kHeadDim), 6), k0 = random_floats(size_t(kHeads * kHeadDim), 7);
    auto run = [&](Backend &b) {
        std::vector<float> q = q0, k = k0, q2 = q0, k2 = k0;
        BackendBatch scope(b);
        b.rope(q.data(), 1, 8, kHeadDim, &rope.position, rope.p);
        b.rope(k.data(), 1, kHeads, kHeadDim, &rope.position, rope.p);
        b.rope(q2.data(), 1, 8, kHeadDim, &rope.position, rope.p);  // the next layer
        b.sync();                                                    // the scratch is reset
        b.rope(k2.data(), 1, kHeads, kHeadDim, &rope.position, rope.p);
        b.rope(q.data(), 1, 8, kHeadDim, &other, rope.p);            // another position
        b.sync();
        std::vector<float> out = q;
        for (const auto *v : {&k, &q2, &k2}) out.insert(out.end(), v->begin(), v->end());
        return out;
    };
    const std::vector<float> want = run(cpu_);
    std::vector<float> by_mode[2];
    for (const bool fused : {true, false}) {
        gpu().set_decode_fusion(fused);
        const uint64_t copies0 = gpu().rope_table_copies();
        by_mode[fused] = run(gpu());
        EXPECT_EQ(gpu().rope_table_copies() - copies0, fused ? 3u : 5u) << "fusion " << fused;
        float worst = 0;
        for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(by_mode[fused][i] - want[i]));
        EXPECT_LT(worst, 1e-5f) << "fusion " << fused;
    }
    EXPECT_EQ(by_mode[0], by_mode[1]);
}

INSTANTIATE_TEST_SUITE_P(Memory, VulkanDecodeFusion, ::testing::Values(false, true), test::memory_kind_name);

#else

TEST(VulkanDecodeFusion, NeedsTheVulkanBackend) { GTEST_SKIP() << "this build has no Vulkan backend"; }

#endif

}  // namespace
}  // namespace mst
