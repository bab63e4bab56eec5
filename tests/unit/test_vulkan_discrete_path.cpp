// A discrete GPU's path, and how few dispatches it takes. Results of a batch are computed
// in device memory and copied to host-visible scratch at sync by one copy_table dispatch
// per source buffer (shaders/copy_table.comp) rather than a copy per result; a group of
// routed experts runs one silu_mul dispatch, not one per expert; a step's KV append
// reaches the device copy of the cache in one copy per cache (keys, values), not one per head. On lavapipe,
// MST_VULKAN_SEPARATE_MEMORY=1 makes the backend treat its memory as a discrete GPU's, so
// this path runs in CI; MST_VULKAN_PROFILE=2 names the dispatches that ran.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "core/error.h"
#include "cpu_op_fixture.h"
#include "kv_attention_step.h"
#include "model/kv_cache.h"
#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/vulkan_backend.h"
#endif

namespace mst {
namespace {

using test::random_floats;

#ifdef MST_HAVE_VULKAN
class VulkanDiscretePath : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        setenv("MST_VULKAN_SEPARATE_MEMORY", "1", 1);
        setenv("MST_VULKAN_PROFILE", "2", 1);
        try {
            gpu_ = new VulkanBackend(BackendOptions{}, false);
        } catch (const Error &e) {
            why_ = e.what();
        }
        unsetenv("MST_VULKAN_SEPARATE_MEMORY");
        unsetenv("MST_VULKAN_PROFILE");
    }
    static void TearDownTestSuite() {
        delete gpu_;
        gpu_ = nullptr;
    }
    void SetUp() override {
        if (!gpu_) GTEST_SKIP() << "no Vulkan device found: " << why_;
    }
    // Dispatches of the shader named `prefix` in the profile so far.
    static uint64_t dispatches_of(const std::string &prefix) {
        uint64_t n = 0;
        for (const auto &[label, st] : gpu_->stream().dispatch_profile())
            if (label.rfind(prefix + " ", 0) == 0) n += st.calls;
        return n;
    }
    static inline VulkanBackend *gpu_ = nullptr;
    static inline std::string why_;
    CpuBackend cpu_{2, cpu_isa_best()};
};

TEST_F(VulkanDiscretePath, ManyResultsOfABatchArriveWhole) {
    // Results of several sizes (one longer than a workgroup's 256 words, one of a single
    // word), all pending at the sync, each compared with the CPU backend's.
    const int64_t rows = 1500, cols = 24;
    const std::vector<float> wdata = random_floats(size_t(rows * cols), 51), x = random_floats(size_t(cols), 52);
    const WeightView w{DType::F32, wdata.data(), rows, cols};
    const std::vector<float> a0 = random_floats(size_t(rows), 53);
    auto run = [&](Backend &b) {
        std::vector<float> y(static_cast<size_t>(rows)), a = a0, one(1), rows3(3 * 5), s(static_cast<size_t>(rows));
        BackendBatch step(b);
        b.matmul(w, x.data(), y.data(), 1);
        b.add(a.data(), y.data(), rows);
        b.copy_rows(y.data() + 7, 1, one.data(), 1, 1);
        b.copy_rows(a.data() + 1, 100, rows3.data(), 3, 5);
        b.silu_mul(y.data(), a.data(), s.data(), rows);
        b.sync();
        std::vector<float> out = y;
        for (const auto *v : {&a, &one, &rows3, &s}) out.insert(out.end(), v->begin(), v->end());
        return out;
    };
    const std::vector<float> want = run(cpu_);
    const uint64_t before = dispatches_of("copy_table");
    const std::vector<float> got = run(*gpu_);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-4f * (1.0f + std::abs(want[i]))) << i;
    EXPECT_GE(dispatches_of("copy_table") - before, 1u) << "the results must come back through copy_table";
}

TEST_F(VulkanDiscretePath, ADecodeLikeChainMatchesAcrossSeveralSyncs) {
    // A result the host rewrites between syncs is read anew, and results delivered by one
    // sync are not delivered again by the next.
    const int64_t n = 700;
    const std::vector<float> y0 = random_floats(size_t(n), 61);
    std::vector<float> x(static_cast<size_t>(n), 1.0f), want(static_cast<size_t>(n), 1.0f), y = y0, copy(static_cast<size_t>(n));
    BackendBatch step(*gpu_);
    for (int round = 0; round < 3; ++round) {
        gpu_->add(x.data(), y.data(), n);
        gpu_->copy_rows(x.data(), n, copy.data(), 1, n);
        gpu_->sync();
        for (int64_t i = 0; i < n; ++i) want[size_t(i)] += y[size_t(i)];
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(x[size_t(i)], want[size_t(i)]) << "round " << round << " at " << i;
        ASSERT_EQ(copy, x) << "round " << round;
        for (float &v : y) v *= 0.5f;  // the host rewrites an input between syncs
    }
}

TEST_F(VulkanDiscretePath, AGroupOfExpertsIsOneSiluDispatchAndMatchesTheCpu) {
    // Eight experts of a decode step and a prefill's uneven split, as ffn.cpp hands them.
    const int64_t hidden = 64, inter = 48, n_tokens = 3, n_experts = 8;
    std::vector<std::vector<float>> gate, up, down;
    std::vector<SwigluExpertUse> uses(static_cast<size_t>(n_experts));
    const std::vector<float> h = random_floats(size_t(n_tokens * hidden), 71);
    std::vector<int64_t> tokens(static_cast<size_t>(n_experts * n_tokens));
    std::vector<float> weights = random_floats(size_t(n_experts * n_tokens), 72, 0.0f, 1.0f);
    for (int64_t e = 0; e < n_experts; ++e) {
        gate.push_back(random_floats(size_t(inter * hidden), uint32_t(100 + 3 * e)));
        up.push_back(random_floats(size_t(inter * hidden), uint32_t(101 + 3 * e)));
        down.push_back(random_floats(size_t(hidden * inter), uint32_t(102 + 3 * e)));
        SwigluExpertUse &u = uses[size_t(e)];
        u.gate = WeightView{DType::F32, gate.back().data(), inter, hidden};
        u.up = WeightView{DType::F32, up.back().data(), inter, hidden};
        u.down = WeightView{DType::F32, down.back().data(), hidden, inter};
        u.n = 1 + e % n_tokens;  // 1, 2 or 3 tokens each
        for (int64_t i = 0; i < u.n; ++i) tokens[size_t(e * n_tokens + i)] = i;
        u.tokens = tokens.data() + e * n_tokens;
        u.weights = weights.data() + e * n_tokens;
    }
    std::vector<float> want(size_t(n_tokens * hidden), 0.0f), got(size_t(n_tokens * hidden), 0.0f);
    cpu_.routed_swiglu(h.data(), want.data(), n_tokens, hidden, uses.data(), uses.size());
    const uint64_t silu_before = dispatches_of("elementwise");
    gpu_->routed_swiglu(h.data(), got.data(), n_tokens, hidden, uses.data(), uses.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-3f * (1.0f + std::abs(want[i]))) << i;
    EXPECT_EQ(dispatches_of("elementwise") - silu_before, 1u) << "one silu_mul for the group of experts";
}

TEST_F(VulkanDiscretePath, KvAppendOfEveryHeadIsOneCopyPerCache) {
    const int32_t kv_heads = 4, heads = 8, hd = 8, hidden = 24, n_ctx = 5;
    std::vector<float> wk = random_floats(size_t(kv_heads * hd * hidden), 81),
                       wv = random_floats(size_t(kv_heads * hd * hidden), 82),
                       wq = random_floats(size_t(heads * hd * hidden), 83);
    const WeightView k_view{DType::F32, wk.data(), kv_heads * hd, hidden},
        v_view{DType::F32, wv.data(), kv_heads * hd, hidden}, q_view{DType::F32, wq.data(), heads * hd, hidden};
    KvCache cpu_cache(1, n_ctx, kv_heads, hd, hd), gpu_cache(1, n_ctx, kv_heads, hd, hd);
    auto step = [&](Backend &b, KvCache &cache, int32_t pos, const std::vector<float> &x) {
        return test::kv_attention_step(b, cache, pos, x, q_view, k_view, v_view, hd);
    };
    for (int32_t pos = 0; pos < n_ctx; ++pos) {
        const std::vector<float> x = random_floats(size_t(hidden), 90 + uint32_t(pos));
        const std::vector<float> want = step(cpu_, cpu_cache, pos, x);
        const uint64_t tables = dispatches_of("copy_table");
        const std::vector<float> got = step(*gpu_, gpu_cache, pos, x);
        for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5f) << "position " << pos;
        // Keys, values (pos > 0: the mirror exists and takes the pending rows), and the results.
        if (pos > 0) EXPECT_GE(dispatches_of("copy_table") - tables, 3u) << "position " << pos;
    }
}
#endif

}  // namespace
}  // namespace mst
