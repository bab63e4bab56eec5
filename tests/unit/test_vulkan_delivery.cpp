// Only what the host reads goes to host memory (docs/device_graph.md, "Delivering only
// what the host reads"): Backend::sync_reads delivers the results the host names, keeps
// the others on the device for the ops after it, and end_batch delivers what is still
// pending. Checked with the memory of a unified device (lavapipe as it is) and of a
// discrete one (MST_VULKAN_SEPARATE_MEMORY=1), whose results are copied to host memory.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "core/error.h"
#include "cpu_op_fixture.h"
#include "test_weight.h"
#ifdef MST_HAVE_VULKAN
#include "vulkan_memory_suite.h"
#endif

namespace mst {
namespace {

using test::random_floats;
using test::TestWeight;

#ifdef MST_HAVE_VULKAN
using VulkanDelivery = test::VulkanMemorySuite;

void expect_near(const std::vector<float> &got, const std::vector<float> &want, const char *what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-4f) << what << " [" << i << "]";
}

// A chain of products whose sizes no workgroup divides: a = A x; s = B a (scratch that
// dies before the sync); r = C s, the one result the host reads at the sync; after it,
// c = D a reads a, which stayed on the device.
struct Chain {
    static constexpr int64_t kIn = 29, kA = 37, kS = 41, kR = 7, kC = 19;
    TestWeight A{DType::F32, kA, kIn, 1}, B{DType::F32, kS, kA, 2}, C{DType::F32, kR, kS, 3},
        D{DType::F32, kC, kA, 4};
    std::vector<float> x = random_floats(size_t(kIn), 5);
    std::vector<float> a, r, c;
    // Runs the chain on b; `at_sync` is called right after the sync, before the rest.
    template <class F>
    void run(Backend &b, F at_sync) {
        a.assign(size_t(kA), 0.0f);
        r.assign(size_t(kR), 0.0f);
        c.assign(size_t(kC), 0.0f);
        BackendBatch step(b);
        b.matmul(A.view, x.data(), a.data(), 1);
        {
            BackendVector s(b, size_t(kS));
            b.matmul(B.view, a.data(), s.data(), 1);
            b.matmul(C.view, s.data(), r.data(), 1);
        }
        const Backend::HostSpan reads[] = {{r.data(), r.size() * sizeof(float)}};
        b.sync_reads(reads);
        at_sync();
        b.matmul(D.view, a.data(), c.data(), 1);
    }
};

TEST_P(VulkanDelivery, SyncReadsDeliversWhatTheHostReadsAndNothingElse) {
    Chain want, got;
    want.run(cpu_, [] {});
    const uint64_t delivered0 = gpu().stream().delivered_bytes(), carried0 = gpu().stream().carried_bytes();
    const uint64_t submissions0 = gpu().submissions();
    got.run(gpu(), [&] {
        // The host reads r now: it must be there.
        expect_near(got.r, want.r, "r at the sync");
        EXPECT_EQ(gpu().stream().delivered_bytes() - delivered0, Chain::kR * sizeof(float))
            << "the sync copied more than r to host memory";
        // a stayed on the device (carried out of the scratch), the dropped scratch s went nowhere.
        EXPECT_EQ(gpu().stream().carried_bytes() - carried0, Chain::kA * sizeof(float));
        for (float v : got.a) ASSERT_EQ(v, 0.0f) << "a reached host memory before end_batch";
    });
    EXPECT_EQ(gpu().submissions() - submissions0, 2u);
    // end_batch delivered a and c (c computed from the device's a after the sync).
    expect_near(got.a, want.a, "a");
    expect_near(got.c, want.c, "c");
    EXPECT_EQ(gpu().stream().delivered_bytes() - delivered0, (Chain::kR + Chain::kA + Chain::kC) * sizeof(float));
}

TEST_P(VulkanDelivery, ResultsStayOnTheDeviceAcrossSeveralSyncs) {
    // A decode-like chain: each round reads the previous round's result on the device and
    // the host reads one small result per round; the carried results move between the two
    // carry arenas each time, and the end is the CPU's.
    const int64_t n = 33, rounds = 5;
    const TestWeight W(DType::F32, n, n, 20), R(DType::F32, 3, n, 21);
    const std::vector<float> x0 = random_floats(size_t(n), 22);
    auto run = [&](Backend &b, std::vector<std::vector<float>> &reads) {
        std::vector<float> x = x0, y(static_cast<size_t>(n));
        reads.assign(size_t(rounds), std::vector<float>(3));
        BackendBatch step(b);
        for (int64_t i = 0; i < rounds; ++i) {
            b.matmul(W.view, x.data(), y.data(), 1);
            b.add(x.data(), y.data(), n);
            b.matmul(R.view, x.data(), reads[size_t(i)].data(), 1);
            const Backend::HostSpan at[] = {{reads[size_t(i)].data(), 3 * sizeof(float)}};
            b.sync_reads(at);
            // The host writes y while the device still holds a result for it: dropped first.
            b.drop_results(y.data(), y.size() * sizeof(float));
            std::fill(y.begin(), y.end(), 0.5f);
            b.add(x.data(), y.data(), n);
        }
        return x;
    };
    std::vector<std::vector<float>> want_reads, got_reads;
    const std::vector<float> want = run(cpu_, want_reads);
    const std::vector<float> got = run(gpu(), got_reads);
    for (int64_t i = 0; i < rounds; ++i) {
        for (size_t j = 0; j < 3; ++j)
            ASSERT_NEAR(got_reads[size_t(i)][j], want_reads[size_t(i)][j],
                        1e-3f * std::max(1.0f, std::abs(want_reads[size_t(i)][j])))
                << "round " << i;
    }
    for (size_t j = 0; j < want.size(); ++j)
        ASSERT_NEAR(got[j], want[j], 1e-3f * std::max(1.0f, std::abs(want[j]))) << j;
}

TEST_P(VulkanDelivery, LongBatchOfRewrittenBuffersDeliversTheLatestResults) {
    // A decode-like batch of many "layers" with no wait: x and y are rewritten every layer,
    // each layer also writes a row of its own that is never rewritten (as the KV rows for
    // the host cache are), so that more live results than CommandStream's look-back window
    // lie between two writes of x; every few layers a product writes the first half of x
    // only, and the next read of all of x must see both halves. The end is the CPU's, and
    // end_batch delivers only the live results: the last x and y and every row, none of
    // the superseded ones.
    const int64_t n = 24, half = n / 2, layers = 90;
    const TestWeight W(DType::F32, n, n, 30), H(DType::F32, half, n, 31), R(DType::F32, 1, n, 32),
        N(DType::F32, 1, n, 34);
    const std::vector<float> x0 = random_floats(size_t(n), 33);
    auto run = [&](Backend &b, std::vector<float> &rows) {
        std::vector<float> x = x0, y(static_cast<size_t>(n)), part(static_cast<size_t>(half));
        rows.assign(size_t(layers), 0.0f);
        BackendBatch step(b);
        for (int64_t l = 0; l < layers; ++l) {
            b.matmul(W.view, x.data(), y.data(), 1);
            b.add(x.data(), y.data(), n);
            b.rms_norm(x.data(), N.view, 0.0f, 1e-6f, x.data(), 1, n);  // bounded over the layers
            b.matmul(R.view, x.data(), rows.data() + l, 1);
            if (l % 7 == 3) {
                b.matmul(H.view, x.data(), part.data(), 1);
                b.copy_rows(part.data(), half, x.data(), 1, half);  // the first half of x
                b.rms_norm(x.data(), N.view, 0.0f, 1e-6f, y.data(), 1, n);
                b.add(x.data(), y.data(), n);
            }
        }
        return x;
    };
    std::vector<float> want_rows, got_rows;
    const std::vector<float> want = run(cpu_, want_rows);
    const uint64_t delivered0 = gpu().stream().delivered_bytes();
    const std::vector<float> got = run(gpu(), got_rows);
    for (size_t j = 0; j < want.size(); ++j)
        ASSERT_NEAR(got[j], want[j], 1e-3f * std::max(1.0f, std::abs(want[j]))) << "x[" << j << "]";
    for (size_t l = 0; l < want_rows.size(); ++l)
        ASSERT_NEAR(got_rows[l], want_rows[l], 1e-3f * std::max(1.0f, std::abs(want_rows[l]))) << "row " << l;
    // x, y, part and the rows once each: a partial write of x runs the batch (x's halves are
    // delivered then and count again), so at least this and far less than every result.
    const uint64_t delivered = gpu().stream().delivered_bytes() - delivered0;
    EXPECT_GE(delivered, uint64_t(2 * n + half + layers) * sizeof(float));
    EXPECT_LT(delivered, uint64_t(layers) * n * sizeof(float)) << "superseded results were delivered";
}

INSTANTIATE_TEST_SUITE_P(Memory, VulkanDelivery, ::testing::Values(false, true), test::memory_kind_name);
#endif

}  // namespace
}  // namespace mst
