// The device-resident step on the Vulkan backend (docs/device_graph.md): the ops that keep
// a step's host work on the device (add, copy_rows) against the CPU backend, batches that
// nest and run once, sync in the middle of a batch, scratch vectors dropped before the
// batch runs, and the KV append feeding the attention without a wait. Without a Vulkan
// device every test is skipped, saying so.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "core/error.h"
#include "cpu_op_fixture.h"
#include "kv_attention_step.h"
#include "model/kv_cache.h"
#include "test_weight.h"
#include "vulkan_suite.h"

namespace mst {
namespace {

using test::random_floats;
using test::TestWeight;

class VulkanDeviceStep : public test::VulkanSuite {
protected:
#ifdef MST_HAVE_VULKAN
    VulkanBackend &gpu() { return *vulkan_; }
    uint64_t submissions() const { return vulkan_->submissions(); }
#else
    Backend &gpu() { return cpu_; }
    uint64_t submissions() const { return 0; }
#endif
    CpuBackend cpu_{2, cpu_isa_best()};
};

float max_abs_diff(const std::vector<float> &a, const std::vector<float> &b) {
    EXPECT_EQ(a.size(), b.size());
    float d = 0;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
    return d;
}

TEST_F(VulkanDeviceStep, AddAndCopyRowsEqualTheCpu) {
    // A float add rounds once on both sides, and a copy is exact: equal bit for bit, alone
    // and chained in a batch (a copy of an add's result, an add of a copy's result).
    const int64_t n = 1001;  // no workgroup size divides it
    const std::vector<float> x0 = random_floats(size_t(n), 11), y = random_floats(size_t(n), 12);
    auto run = [&](Backend &b, bool batch) {
        std::vector<float> x = x0, rows(size_t(7 * 13)), twice(static_cast<size_t>(n));
        BackendBatch scope(b, batch);
        b.add(x.data(), y.data(), n);
        b.copy_rows(x.data() + 3, 17, rows.data(), 7, 13);  // 7 rows of 13 at stride 17
        b.copy_rows(x.data(), n, twice.data(), 1, n);
        b.add(twice.data(), x.data(), n);
        b.sync();
        std::vector<float> out = x;
        out.insert(out.end(), rows.begin(), rows.end());
        out.insert(out.end(), twice.begin(), twice.end());
        return out;
    };
    const std::vector<float> want = run(cpu_, false);
    EXPECT_EQ(max_abs_diff(run(gpu(), false), want), 0.0f);
    EXPECT_EQ(max_abs_diff(run(gpu(), true), want), 0.0f);
}

TEST_F(VulkanDeviceStep, BadArgumentsAreErrors) {
    std::vector<float> a(8), b(8);
    for (Backend *be : {static_cast<Backend *>(&cpu_), static_cast<Backend *>(&gpu())}) {
        EXPECT_THROW(be->add(a.data(), nullptr, 8), Error);
        EXPECT_THROW(be->add(a.data(), b.data(), -1), Error);
        EXPECT_THROW(be->copy_rows(a.data(), 2, b.data(), 2, 4), Error);  // stride below the row
        EXPECT_THROW(be->copy_rows(nullptr, 4, b.data(), 2, 4), Error);
    }
}

TEST_F(VulkanDeviceStep, NestedBatchesRunOnceAtTheOuterEnd) {
    const TestWeight w(DType::F32, 24, 40, 21);
    const std::vector<float> x = random_floats(40, 22);
    std::vector<float> y(24, NAN), z(24, NAN), want_y(24), want_z(24);
    cpu_.matmul(w.view, x.data(), want_y.data(), 1);
    cpu_.silu_mul(want_y.data(), want_y.data(), want_z.data(), 24);
    const uint64_t before = submissions();
    {
        BackendBatch outer(gpu());
        {
            BackendBatch inner(gpu());
            gpu().matmul(w.view, x.data(), y.data(), 1);
        }
        EXPECT_EQ(submissions(), before) << "an inner batch's end must not run the outer batch";
        gpu().silu_mul(y.data(), y.data(), z.data(), 24);
    }
    EXPECT_EQ(submissions(), before + 1);
    EXPECT_LT(max_abs_diff(y, want_y), 1e-5f);
    EXPECT_LT(max_abs_diff(z, want_z), 1e-5f);
}

TEST_F(VulkanDeviceStep, SyncDeliversResultsAndTheBatchGoesOn) {
    // The router's pattern: a product, a sync, the host reads and rewrites the result,
    // and later ops of the same batch read what the host wrote.
    const TestWeight w(DType::F32, 16, 32, 31);
    const std::vector<float> x = random_floats(32, 32);
    std::vector<float> y(16, NAN), acc(16, 1.0f), want(16);
    cpu_.matmul(w.view, x.data(), want.data(), 1);
    BackendBatch step(gpu());
    gpu().matmul(w.view, x.data(), y.data(), 1);
    gpu().sync();
    EXPECT_LT(max_abs_diff(y, want), 1e-5f);
    for (float &v : y) v *= 2.0f;
    const std::vector<float> written = y;
    gpu().add(acc.data(), y.data(), 16);
    gpu().sync();
    for (size_t i = 0; i < 16; ++i) EXPECT_EQ(acc[i], 1.0f + written[i]) << i;
}

TEST_F(VulkanDeviceStep, DroppedScratchIsNeitherWrittenNorReadAgain) {
    // A scratch vector that dies inside a batch: its pending result must not land in its
    // (freed) memory, and memory at that address, rewritten by the host, is read anew.
    const TestWeight w(DType::F32, 16, 32, 41);
    const std::vector<float> x = random_floats(32, 42);
    std::vector<float> scratch(16, NAN), out(16, 0.0f);
    BackendBatch step(gpu());
    gpu().matmul(w.view, x.data(), scratch.data(), 1);
    gpu().drop_results(scratch.data(), scratch.size() * sizeof(float));
    std::fill(scratch.begin(), scratch.end(), 3.0f);  // the "new owner" of the address
    gpu().add(out.data(), scratch.data(), 16);
    gpu().sync();
    for (size_t i = 0; i < 16; ++i) {
        EXPECT_EQ(scratch[i], 3.0f) << i;
        EXPECT_EQ(out[i], 3.0f) << i;
    }
}

TEST_F(VulkanDeviceStep, KvAppendFeedsAttentionInOneSubmission) {
    // A decode step's attention: k and v from products, appended to the cache by backend
    // ops, attention over it, all in one batch: one submission, the CPU's result, and the
    // host's cache holds the new rows once the batch has run.
    const int32_t kv_heads = 2, heads = 4, hd = 8, hidden = 24, n_ctx = 6;
    const TestWeight wk(DType::F32, kv_heads * hd, hidden, 51), wv(DType::F32, kv_heads * hd, hidden, 52),
        wq(DType::F32, heads * hd, hidden, 53);
    KvCache cpu_cache(1, n_ctx, kv_heads, hd, hd), gpu_cache(1, n_ctx, kv_heads, hd, hd);
    auto step = [&](Backend &b, KvCache &cache, int32_t pos, const std::vector<float> &x, bool batch) {
        return test::kv_attention_step(b, cache, pos, x, wq.view, wk.view, wv.view, hd, batch);
    };
    for (int32_t pos = 0; pos < n_ctx; ++pos) {
        const std::vector<float> x = random_floats(size_t(hidden), 60 + uint32_t(pos));
        const std::vector<float> want = step(cpu_, cpu_cache, pos, x, false);
        const uint64_t before = submissions();
        const std::vector<float> got = step(gpu(), gpu_cache, pos, x, true);
        EXPECT_EQ(submissions(), before + 1) << "position " << pos;
        EXPECT_LT(max_abs_diff(got, want), 1e-5f) << "position " << pos;
        for (int32_t h = 0; h < kv_heads; ++h)
            for (int32_t d = 0; d < hd; ++d) {
                const int64_t at = h * gpu_cache.k_stride() + int64_t(pos) * hd + d;
                EXPECT_NEAR(gpu_cache.keys(0)[at], cpu_cache.keys(0)[at], 1e-5f);
                EXPECT_NEAR(gpu_cache.values(0)[at], cpu_cache.values(0)[at], 1e-5f);
            }
    }
}

TEST_F(VulkanDeviceStep, ExpertsKickedAheadFeedTheRestOfTheBatch) {
    // Inside a step's batch routed_swiglu hands its work to the device without a wait
    // (CommandStream::kick); what the batch records after it reads and rewrites its
    // result, and the batch still ends in one wait with the CPU's result.
    const int64_t hidden = 32, inter = 16, n_experts = 3;
    std::vector<std::vector<float>> parts;
    std::vector<SwigluExpertUse> uses(static_cast<size_t>(n_experts));
    const int64_t token = 0;
    const std::vector<float> weights = {0.5f, 0.3f, 0.2f};
    for (int64_t e = 0; e < n_experts; ++e) {
        parts.push_back(random_floats(size_t(inter * hidden), uint32_t(200 + 3 * e)));
        parts.push_back(random_floats(size_t(inter * hidden), uint32_t(201 + 3 * e)));
        parts.push_back(random_floats(size_t(hidden * inter), uint32_t(202 + 3 * e)));
        SwigluExpertUse &u = uses[size_t(e)];
        u.gate = WeightView{DType::F32, parts[size_t(3 * e)].data(), inter, hidden};
        u.up = WeightView{DType::F32, parts[size_t(3 * e + 1)].data(), inter, hidden};
        u.down = WeightView{DType::F32, parts[size_t(3 * e + 2)].data(), hidden, inter};
        u.tokens = &token;
        u.weights = &weights[size_t(e)];
        u.n = 1;
    }
    const std::vector<float> h0 = random_floats(size_t(hidden), 210), x0 = random_floats(size_t(hidden), 211);
    auto run = [&](Backend &b) {
        std::vector<float> h = h0, x = x0, y(static_cast<size_t>(hidden), 0.0f);
        BackendBatch step(b);
        b.routed_swiglu(h.data(), y.data(), 1, hidden, uses.data(), uses.size());
        b.add(x.data(), y.data(), hidden);   // reads the kicked result
        b.add(y.data(), x.data(), hidden);   // rewrites what the kicked work wrote
        b.routed_swiglu(h.data(), y.data(), 1, hidden, uses.data(), uses.size());
        b.add(x.data(), y.data(), hidden);
        b.sync();
        return x;
    };
    const std::vector<float> want = run(cpu_);
    const uint64_t before = submissions();
#ifdef MST_HAVE_VULKAN
    const uint64_t kicks = vulkan_->stream().kicks();
#endif
    const std::vector<float> got = run(gpu());
    EXPECT_LT(max_abs_diff(got, want), 1e-3f);
    EXPECT_EQ(submissions(), before + 1) << "one wait for the step";
#ifdef MST_HAVE_VULKAN
    EXPECT_EQ(vulkan_->stream().kicks() - kicks, 2u) << "each group of experts handed over without a wait";
#endif
}

}  // namespace
}  // namespace mst
