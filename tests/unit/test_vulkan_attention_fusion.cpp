// The Vulkan backend's attention fusions (docs/gpu_decode_kernels.md, "The attention half in
// fewer levels"; MST_VULKAN_ATTENTION_FUSION, backends/vulkan/op_fusion.cpp): inside a batch a
// norm folded into the one-token products that read it (and its result still written), q-norm
// and k-norm folded into their rope, a product's residual add into its epilogue. Each sequence
// of ops runs with the fusion on and off: the results must be the same bit for bit (the fused
// kernels take the same sums in the same order), the fused dispatches must have been recorded
// with it on and not with it off, and both must agree with the CPU backend within
// test_vulkan_matvec's bounds. Odd sizes, every weight type the one-token product takes.
// Sequences the fusion must not reorder (a deferred op whose result another deferred op reads)
// keep their meaning. Every test runs on the device's memory and on a discrete GPU's path
// (test::VulkanMemorySuite), where a weight's first use records its copy: a fused count taken
// on fresh weights there finds the fusion off (the router top-k test did on an H100). Without a
// Vulkan device every test is skipped, saying so.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "cpu_op_fixture.h"
#include "stable_weight.h"
#include "test_weight.h"

#ifdef MST_HAVE_VULKAN
#include "vulkan_memory_suite.h"
#endif

namespace mst {
namespace {

using test::random_floats;
using test::norm_weight;
using test::stable_weight;

#ifdef MST_HAVE_VULKAN

// test_vulkan_matvec's bounds (the CPU's activations pinned to 16 bits: tests/CMakeLists.txt).
constexpr double kFloatBound = 2e-5;
constexpr double kQuantBound = 3e-4;
const DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8, DType::Q4};

class VulkanAttentionFusion : public test::VulkanMemorySuite {
protected:
    void TearDown() override {
        if (gpus_[GetParam()]) {
            gpu().set_attention_fusion(true);
            gpu().set_qkv_fusion(true);
            std::string why;
            gpu().set_matvec_tuning(gpu().default_matvec_tuning(), why);
            gpu().set_norm_x_shared(false);
        }
    }
    void check_norm_qkv(DType t, int64_t cols, const std::string &what);
    void check_residual_add(DType t, int64_t rows, int64_t cols, const std::string &what);
    // `run` on the CPU and on the GPU with the fusion off and on: on and off bit for bit the
    // same, the CPU within `bound`; `fused` counts the fused dispatches of one run.
    void check(const std::function<std::vector<float>(Backend &)> &run, const std::function<uint64_t()> &fused,
               uint64_t want_fused, double bound, const std::string &what) {
        const std::vector<float> want = run(cpu_);
        std::vector<float> got[2];
        for (const bool on : {false, true}) {
            gpu().set_attention_fusion(on);
            const uint64_t before = fused();
            got[on] = run(gpu());
            EXPECT_EQ(fused() - before, on ? want_fused : 0u)
                << what << ", fusion " << on << (on ? ": the fusion did not engage" : "");
        }
        ASSERT_EQ(got[0].size(), want.size()) << what;
        ASSERT_EQ(got[1].size(), want.size()) << what;
        for (size_t i = 0; i < want.size(); ++i)
            ASSERT_EQ(got[1][i], got[0][i]) << what << ": element " << i << " differs with the fusion on and off";
        EXPECT_LT(test::normalized_error(got[1], want), bound) << what;
    }
};

// x as a pending result of the batch (the residual after an add), as a decode layer has it.
void pending_x(Backend &b, std::vector<float> &x, const std::vector<float> &delta) {
    b.add(x.data(), delta.data(), int64_t(x.size()));
}

// The input norm of a pending x (x0 + d) and the q, k and v products of its result (37, 5
// and 5 rows of type t, cols wide) checked with the fusion on and off: h, then q, k, v.
void VulkanAttentionFusion::check_norm_qkv(DType t, int64_t cols, const std::string &what) {
    const WeightView q = stable_weight(t, 37, cols, 1), k = stable_weight(t, 5, cols, 2), v = stable_weight(t, 5, cols, 3);
    const WeightView nw = norm_weight(cols, 4);
    const std::vector<float> x0 = random_floats(size_t(cols), 5, -2.0f, 2.0f), d = random_floats(size_t(cols), 6);
    auto run = [&](Backend &b) {
        std::vector<float> x = x0, h(static_cast<size_t>(cols)), qo(37), ko(5), vo(5);
        {
            BackendBatch batch(b);
            pending_x(b, x, d);
            b.rms_norm(x.data(), nw, 0.0f, 1e-6f, h.data(), 1, cols);
            const WeightView ws[] = {q, k, v};
            float *const ys[] = {qo.data(), ko.data(), vo.data()};
            b.matmuls_one_input(ws, ys, h.data(), 1);
        }
        std::vector<float> out = h;
        for (const auto *o : {&qo, &ko, &vo}) out.insert(out.end(), o->begin(), o->end());
        return out;
    };
    check(run, [&] { return gpu().fused_norm_products(); }, 3, dtype_is_quantized(t) ? kQuantBound : kFloatBound,
          what);
}

// A product of a pending input (rows x cols of type t) and the residual add of its result:
// the sum, then the product's own result.
void VulkanAttentionFusion::check_residual_add(DType t, int64_t rows, int64_t cols, const std::string &what) {
    const WeightView o = stable_weight(t, rows, cols, 31);
    const std::vector<float> a0 = random_floats(size_t(cols), 32), x0 = random_floats(size_t(rows), 33);
    auto run = [&](Backend &b) {
        std::vector<float> a = a0, x = x0, y(static_cast<size_t>(rows));
        const std::vector<float> z(size_t(cols), 0.0f);
        {
            BackendBatch batch(b);
            pending_x(b, a, z);  // the attention's output, pending
            b.matmul(o, a.data(), y.data(), 1);
            b.add(x.data(), y.data(), rows);
        }
        std::vector<float> out = x;
        out.insert(out.end(), y.begin(), y.end());  // the product's own result too
        return out;
    };
    check(run, [&] { return gpu().fused_residual_products(); }, 1, dtype_is_quantized(t) ? kQuantBound : kFloatBound,
          what);
}

TEST_P(VulkanAttentionFusion, InputNormFoldsIntoTheQkvProductsAndItsResultIsStillWritten) {
    // cols: a norm row of one vec4 per invocation and less, and a full 4-per-invocation one.
    for (const int64_t cols : {96, 544, 4096})
        for (const DType t : kTypes) check_norm_qkv(t, cols, std::string(dtype_name(t)) + " cols " + std::to_string(cols));
}

TEST_P(VulkanAttentionFusion, SeveralRowsALaneKeepTheFusedBits) {
    // The dense family at several rows a lane (MST_VULKAN_MATVEC_TUNING=dense=LxRxP): the
    // norm and the add folded into products whose lanes take 2 to 8 rows each, the last
    // workgroup's lanes partly past the last row (37, 5 and 103 rows), with the unfused
    // commands at the same shape bit for bit; q/k/v in one dispatch (MST_VULKAN_QKV_FUSION)
    // and as three.
    std::string why;
    for (const MatvecShape s : {MatvecShape{32, 4, 2}, MatvecShape{16, 8, 4}, MatvecShape{64, 2, 3}, MatvecShape{8, 4, 8}}) {
        ASSERT_TRUE(gpu().set_matvec_tuning(MatvecTuning::at(s), why)) << s.name() << ": " << why;
        for (const bool qkv : {true, false}) {
            gpu().set_qkv_fusion(qkv);
            for (const DType t : kTypes)
                check_norm_qkv(t, 544, std::string(dtype_name(t)) + " shape " + s.name() + (qkv ? " qkv" : " apart"));
        }
        for (const DType t : kTypes) check_residual_add(t, 103, 160, std::string(dtype_name(t)) + " shape " + s.name());
    }
}

TEST_P(VulkanAttentionFusion, XNormalisedInSharedMemoryKeepsTheFusedBits) {
    // MST_VULKAN_NORM_X_SHARED=1: the norm-folded products read x normalised once per
    // workgroup; the unfused norm and products at the same shape bit for bit, at the default
    // shape and at several rows a lane, cols up to the 4096 the staging holds.
    gpu().set_norm_x_shared(true);
    std::string why;
    for (const MatvecShape s : {gpu().default_matvec_tuning().dense, MatvecShape{32, 4, 4}}) {
        ASSERT_TRUE(gpu().set_matvec_tuning(MatvecTuning::at(s), why)) << s.name() << ": " << why;
        for (const int64_t cols : {96, 4096})
            for (const DType t : kTypes)
                check_norm_qkv(t, cols,
                               std::string(dtype_name(t)) + " cols " + std::to_string(cols) + " shape " + s.name());
    }
}

TEST_P(VulkanAttentionFusion, PostNormFoldsIntoTheRouterAndTheExpertsReadItsResult) {
    // (1 + w) norms too; h read by a later op of the batch (the experts' products).
    const int64_t cols = 352;
    for (const DType t : kTypes)
        for (const float offset : {0.0f, 1.0f}) {
            const WeightView router = stable_weight(t, 19, cols, 11), gate = stable_weight(t, 7, cols, 12);
            const WeightView nw = norm_weight(cols, 13);
            const std::vector<float> x0 = random_floats(size_t(cols), 14), d = random_floats(size_t(cols), 15);
            auto run = [&](Backend &b) {
                std::vector<float> x = x0, h(static_cast<size_t>(cols)), logits(19), g(7);
                {
                    BackendBatch batch(b);
                    pending_x(b, x, d);
                    b.rms_norm(x.data(), nw, offset, 1e-5f, h.data(), 1, cols);
                    b.matmul(router, h.data(), logits.data(), 1);
                    b.silu_mul(h.data(), h.data(), h.data(), cols);  // reads h after the fused product
                    b.matmul(gate, h.data(), g.data(), 1);
                }
                std::vector<float> out = h;
                out.insert(out.end(), logits.begin(), logits.end());
                out.insert(out.end(), g.begin(), g.end());
                return out;
            };
            check(run, [&] { return gpu().fused_norm_products(); }, 1,
                  dtype_is_quantized(t) ? kQuantBound : kFloatBound,
                  std::string(dtype_name(t)) + " offset " + std::to_string(offset));
        }
}

TEST_P(VulkanAttentionFusion, TheHeadsLongProductKeepsTheNormsDispatch) {
    // Past VulkanBackend::kNormProductRows rows every workgroup re-reading x would cost more
    // than the norm's own dispatch: the norm is recorded as it was, the product reads it.
    const int64_t rows = VulkanBackend::kNormProductRows + 1, cols = 64;
    const WeightView head = stable_weight(DType::BF16, rows, cols, 61);
    const WeightView nw = norm_weight(cols, 62);
    const std::vector<float> x0 = random_floats(size_t(cols), 63), d = random_floats(size_t(cols), 64);
    auto run = [&](Backend &b) {
        std::vector<float> x = x0, h(static_cast<size_t>(cols)), logits(static_cast<size_t>(rows));
        {
            BackendBatch batch(b);
            pending_x(b, x, d);
            b.rms_norm(x.data(), nw, 0.0f, 1e-6f, h.data(), 1, cols);
            b.matmul(head, h.data(), logits.data(), 1);
        }
        std::vector<float> out = h;
        out.insert(out.end(), logits.begin(), logits.end());
        return out;
    };
    check(run, [&] { return gpu().fused_norm_products(); }, 0, kFloatBound, "head");
}

// Halves of heads of 20 (partial rotation too), one token and three.
struct Rope {
    std::vector<float> inv_freq;
    RopeParams p;
    Rope(int32_t rotary_dim, bool interleaved) : inv_freq(size_t(rotary_dim / 2)) {
        for (size_t i = 0; i < inv_freq.size(); ++i)
            inv_freq[i] = std::pow(10000.0f, -2.0f * float(i) / float(rotary_dim));
        p.rotary_dim = rotary_dim;
        p.inv_freq = inv_freq.data();
        p.interleaved = interleaved;
    }
};

TEST_P(VulkanAttentionFusion, QkNormsFoldIntoTheirRope) {
    const int64_t head_dim = 20, n_heads = 5, n_kv = 3;
    for (const int64_t n_tokens : {1, 3})
        for (const int32_t rotary : {20, 12})
            for (const bool interleaved : {false, true}) {
                const Rope rope(rotary, interleaved);
                const WeightView qn = norm_weight(head_dim, 21), kn = norm_weight(head_dim, 22);
                const std::vector<int32_t> positions = {41, 42, 43};
                const std::vector<float> q0 = random_floats(size_t(n_tokens * n_heads * head_dim), 23, -3.0f, 3.0f);
                const std::vector<float> k0 = random_floats(size_t(n_tokens * n_kv * head_dim), 24, -3.0f, 3.0f);
                const std::vector<float> zq(q0.size(), 0.0f), zk(k0.size(), 0.0f);
                auto run = [&](Backend &b) {
                    std::vector<float> q = q0, k = k0;
                    {
                        BackendBatch batch(b);
                        pending_x(b, q, zq);  // the q and k products' results, pending
                        pending_x(b, k, zk);
                        // gqa_attention's order: both norms, then both ropes.
                        b.rms_norm(q.data(), qn, 0.0f, 1e-6f, q.data(), n_tokens * n_heads, head_dim);
                        b.rms_norm(k.data(), kn, 0.0f, 1e-6f, k.data(), n_tokens * n_kv, head_dim);
                        b.rope(q.data(), n_tokens, n_heads, head_dim, positions.data(), rope.p);
                        b.rope(k.data(), n_tokens, n_kv, head_dim, positions.data(), rope.p);
                    }
                    std::vector<float> out = q;
                    out.insert(out.end(), k.begin(), k.end());
                    return out;
                };
                check(run, [&] { return gpu().fused_norm_ropes(); }, 2, 1e-5,
                      "tokens " + std::to_string(n_tokens) + " rotary " + std::to_string(rotary) +
                          (interleaved ? " interleaved" : " halves"));
            }
}

TEST_P(VulkanAttentionFusion, ResidualAddFoldsIntoTheProductBeforeIt) {
    for (const DType t : kTypes) check_residual_add(t, 103, 160, std::string(dtype_name(t)));
}

TEST_P(VulkanAttentionFusion, DeferredOpsKeepTheirOrderWhereItMatters) {
    // norm1 (a -> b) waits; norm2 reads b (b -> c) and waits; rope of b may fold norm1 in
    // only after norm2 has read b: the result must be norm2(norm1(a)) in c, rope(norm1(a))
    // in b. Then a norm whose result nothing fuses with (silu_mul reads it), a product
    // nothing adds (a norm reads it), and an in-place rope of a norm's input.
    const int64_t dim = 24;
    const Rope rope(dim, false);
    const int32_t pos = 9;
    const WeightView w1 = norm_weight(dim, 41), w2 = norm_weight(dim, 42);
    const WeightView m = stable_weight(DType::BF16, dim, dim, 43);
    const std::vector<float> a0 = random_floats(size_t(dim), 44, -2.0f, 2.0f), z(size_t(dim), 0.0f);
    auto run = [&](Backend &b) {
        std::vector<float> a = a0, bb(static_cast<size_t>(dim)), c(static_cast<size_t>(dim)), s(static_cast<size_t>(dim)), p(static_cast<size_t>(dim)), r(static_cast<size_t>(dim)),
            e(static_cast<size_t>(dim));
        {
            BackendBatch batch(b);
            pending_x(b, a, z);
            b.rms_norm(a.data(), w1, 0.0f, 1e-6f, bb.data(), 1, dim);
            b.rms_norm(bb.data(), w2, 1.0f, 1e-6f, c.data(), 1, dim);
            b.rope(bb.data(), 1, 1, dim, &pos, rope.p);
            b.rms_norm(c.data(), w1, 0.0f, 1e-6f, s.data(), 1, dim);
            b.silu_mul(s.data(), c.data(), s.data(), dim);
            b.matmul(m, s.data(), p.data(), 1);
            b.rms_norm(p.data(), w2, 0.0f, 1e-6f, r.data(), 1, dim);
            b.rms_norm(a.data(), w2, 0.0f, 1e-6f, e.data(), 1, dim);
            b.rope(a.data(), 1, 1, dim, &pos, rope.p);  // after e read a
        }
        std::vector<float> out;
        for (const auto *v : {&a, &bb, &c, &s, &p, &r, &e}) out.insert(out.end(), v->begin(), v->end());
        return out;
    };
    // Nothing here may fuse but the rope of norm1's result (after norm2 was recorded, so
    // not ahead of it: recorded in order, unfused) -- none of the counted dispatches.
    check(run, [&] { return gpu().fused_norm_ropes() + gpu().fused_residual_products(); }, 0, 1e-4,
          "dependent deferred ops");
}

TEST_P(VulkanAttentionFusion, AResultDroppedAndRewrittenOnTheHostIsNotFoldedIn) {
    // As bench_vulkan's forward does with y: the product's result dropped, y refilled on the
    // host, then added: the add must read the host's y, not fold the dropped product in.
    const int64_t rows = 40, cols = 64;
    const WeightView o = stable_weight(DType::BF16, rows, cols, 71);
    const std::vector<float> a0 = random_floats(size_t(cols), 72), x0 = random_floats(size_t(rows), 73);
    const std::vector<float> fill = random_floats(size_t(rows), 74);
    auto run = [&](Backend &b) {
        std::vector<float> a = a0, x = x0, y(static_cast<size_t>(rows));
        const std::vector<float> z(static_cast<size_t>(cols), 0.0f);
        {
            BackendBatch batch(b);
            pending_x(b, a, z);
            b.matmul(o, a.data(), y.data(), 1);
            b.drop_results(y.data(), y.size() * sizeof(float));
            y = fill;
            b.add(x.data(), y.data(), rows);
        }
        return x;
    };
    check(run, [&] { return gpu().fused_residual_products(); }, 0, 1e-6, "dropped product");
}

TEST_P(VulkanAttentionFusion, ALayersAttentionTakesTwoCommandsAndTwoLevelsLess) {
    // The input norm, q/k/v, o and the residual add: with the fusion the norm and the add
    // record no command and no barrier of their own (CommandStream's counts). q, k and v
    // keep a dispatch each here (test_vulkan_qkv_fusion counts what their fusion saves).
    gpu().set_qkv_fusion(false);
    const int64_t cols = 256;
    const WeightView q = stable_weight(DType::BF16, 64, cols, 51), k = stable_weight(DType::BF16, 16, cols, 52),
                     v = stable_weight(DType::BF16, 16, cols, 53);
    const WeightView o = stable_weight(DType::BF16, cols, 64, 54);
    const WeightView nw = norm_weight(cols, 55);
    const std::vector<float> x0 = random_floats(size_t(cols), 56), z(size_t(cols), 0.0f);
    uint64_t commands[2] = {}, barriers[2] = {};
    // The first run copies the weights to the device (a discrete GPU's copy commands).
    for (const bool on : {false, false, true}) {
        gpu().set_attention_fusion(on);
        std::vector<float> x = x0, h(static_cast<size_t>(cols)), qo(64), ko(16), vo(16), y(static_cast<size_t>(cols));
        const uint64_t c0 = gpu().stream().commands(), b0 = gpu().stream().barriers();
        {
            BackendBatch batch(gpu());
            pending_x(gpu(), x, z);
            gpu().rms_norm(x.data(), nw, 0.0f, 1e-6f, h.data(), 1, cols);
            const WeightView ws[] = {q, k, v};
            float *const ys[] = {qo.data(), ko.data(), vo.data()};
            gpu().matmuls_one_input(ws, ys, h.data(), 1);
            gpu().matmul(o, qo.data(), y.data(), 1);
            gpu().add(x.data(), y.data(), cols);
        }
        commands[on] = gpu().stream().commands() - c0;
        barriers[on] = gpu().stream().barriers() - b0;
    }
    // Off: add, norm, 3 products, o, add (+ deliveries); on: the norm and the last add folded.
    EXPECT_EQ(commands[0] - commands[1], 2u);
    EXPECT_EQ(barriers[0] - barriers[1], 2u);
}

INSTANTIATE_TEST_SUITE_P(Memory, VulkanAttentionFusion, ::testing::Values(false, true), test::memory_kind_name);

#else

TEST(VulkanAttentionFusion, NeedsTheVulkanBackend) { GTEST_SKIP() << "this build has no Vulkan backend"; }

#endif

}  // namespace
}  // namespace mst
