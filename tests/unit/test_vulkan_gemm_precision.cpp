// The f16 staging of the prefill GEMMs (MST_VULKAN_COOPMAT_PRECISION, gemm_precision.h):
// split (the default) stages each activation as hi = its leading 11 bits and lo = f16(x - hi)
// (but for q4 weights, which take one f16 each as the CPU gives them 8-bit activations), and
// the weights f16 does not hold (f32, q8) alike; exact splits q4's activations and weights
// too; f16 stages one f16 each. The cooperative
// kernels run only on a GPU with VK_NV_cooperative_matrix, so the staging is shown on
// gemm_tuned.comp's float-product variant, which stages exactly as the cooperative one
// (MST_VULKAN_GEMM=portable with a tuning; lavapipe in CI): against the exact (double)
// product of activations f16 cannot hold, the split's error must be near float rounding and
// the f16 staging's many times larger.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/quant.h"
#include "cpu_op_fixture.h"
#include "expect_error.h"
#include "scoped_env.h"
#include "test_weight.h"
#include "vulkan_suite.h"

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN

using test::normalized_error;
using test::TestWeight;

// Split staging: the activations carry ~22 bits and the weights are exact in f16 or split,
// so the products' error is float summation's plus 2^-22 of each term (lavapipe: 2-3e-7 of
// the largest output). One f16: 2^-11 of each activation (and weight): 1.6-3.7e-4 here. The
// split must be at least kSplitGain times closer (lavapipe: 540-1600 times).
constexpr double kSplitBound = 2e-6;
constexpr double kF16AtLeast = 1e-4;
constexpr double kSplitGain = 100;

// A tiling whose tiles fit lavapipe's 32 KiB with the split (SwiGLU, split weights: 29 KiB).
constexpr GemmTuning kTuning{2, 1, 1, 32};

// Activations with full 24-bit significands over a wide range (2^-6 .. 2^3), random signs:
// f16 rounds every one of them.
std::vector<float> wide_activations(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> significand(1.0f, 2.0f);
    std::uniform_int_distribution<int> exponent(-6, 2);
    std::vector<float> v(n);
    for (float &f : v) f = std::ldexp(significand(rng), exponent(rng)) * (rng() & 1u ? 1.0f : -1.0f);
    return v;
}

// The weight's values as the GPU decodes them (widened, or dequantized).
std::vector<float> weight_values(const TestWeight &w) {
    const DType t = w.view.dtype;
    std::vector<float> v(size_t(w.view.rows * w.view.cols));
    if (dtype_is_quantized(t)) {
        const uint64_t row_bytes = dtype_row_bytes(t, w.view.cols);
        for (int64_t r = 0; r < w.view.rows; ++r)
            dequantize_row(t, w.bytes.data() + r * row_bytes, v.data() + r * w.view.cols, w.view.cols);
        return v;
    }
    for (size_t i = 0; i < v.size(); ++i) {
        if (t == DType::F32) {
            std::memcpy(&v[i], w.bytes.data() + 4 * i, 4);
            continue;
        }
        uint16_t h;
        std::memcpy(&h, w.bytes.data() + 2 * i, 2);
        v[i] = t == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
    return v;
}

// y[t][r] = sum_c W[r][c] x[t][c] in double.
std::vector<double> exact_product(const std::vector<float> &w, int64_t rows, int64_t cols, const float *x,
                                  int64_t n_tokens) {
    std::vector<double> y(size_t(n_tokens * rows));
    for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t r = 0; r < rows; ++r) {
            double s = 0.0;
            for (int64_t c = 0; c < cols; ++c) s += double(w[size_t(r * cols + c)]) * double(x[t * cols + c]);
            y[size_t(t * rows + r)] = s;
        }
    return y;
}

class VulkanGemmPrecision : public test::VulkanSuite {
protected:
    void SetUp() override {
        VulkanSuite::SetUp();
        if (IsSkipped()) return;
        std::string why;
        ASSERT_TRUE(vulkan_->set_gemm(VulkanBackend::GemmKernel::portable, 1, why)) << why;
        ASSERT_TRUE(vulkan_->set_gemm_tuning(kTuning, why)) << why;
    }
    void TearDown() override {
        std::string why;
        if (!vulkan_) return;
        vulkan_->set_gemm(VulkanBackend::GemmKernel::automatic, 16, why);
        vulkan_->set_gemm_tuning(GemmTuning{}, why);
        vulkan_->set_coop_precision(CoopPrecision::split, why);
    }

    // The error of one dense product (a single tuned GEMM dispatch) under `precision`.
    double dense_error(CoopPrecision precision, const TestWeight &w, const std::vector<float> &x, int64_t n_tokens) {
        std::string why;
        EXPECT_TRUE(vulkan_->set_coop_precision(precision, why)) << why;
        const std::vector<double> want = exact_product(weight_values(w), w.view.rows, w.view.cols, x.data(), n_tokens);
        std::vector<float> got(want.size(), NAN);
        const uint64_t before = vulkan_->gemm_dispatches();
        vulkan_->matmul(w.view, x.data(), got.data(), n_tokens);
        EXPECT_EQ(vulkan_->gemm_dispatches(), before + 1) << "one GEMM dispatch";
        return normalized_error(got, want);
    }
};

// Every weight type the GEMM takes: bf16 and f16 weights are exact in f16 (only the
// activations split), f32 and q8 (d*q) are not (both split); q4 stays one f16 each but under
// exact, which splits both. 257 columns end inside a step, 65 tokens and 130 rows run past a tile.
TEST_F(VulkanGemmPrecision, SplitStagingHoldsActivationsThatF16Rounds) {
    const int64_t rows = 130, cols = 257, n_tokens = 65;
    const std::vector<float> x = wide_activations(size_t(n_tokens * cols), 7);
    uint32_t seed = 20;
    for (const DType t : {DType::BF16, DType::F16, DType::F32, DType::Q8, DType::Q4}) {
        const TestWeight w(t, rows, cols, ++seed);
        const double split = dense_error(CoopPrecision::split, w, x, n_tokens);
        const double f16 = dense_error(CoopPrecision::f16, w, x, n_tokens);
        std::printf("  %-4s tuned %s: error split %.3g, f16 %.3g (%.0fx)\n", std::string(dtype_name(t)).c_str(), kTuning.name().c_str(),
                    split, f16, f16 / split);
        EXPECT_GT(f16, kF16AtLeast) << dtype_name(t) << ": the one-f16 staging ran";
        if (t == DType::Q4) {  // q4 takes one f16 each under split (gemm.comp, SPLIT_X), both split under exact
            EXPECT_EQ(split, f16) << dtype_name(t);
            const double exact = dense_error(CoopPrecision::exact, w, x, n_tokens);
            std::printf("  %-4s tuned %s: error exact %.3g (%.0fx)\n", std::string(dtype_name(t)).c_str(),
                        kTuning.name().c_str(), exact, f16 / exact);
            EXPECT_LT(exact, kSplitBound) << dtype_name(t);
            EXPECT_GT(f16, kSplitGain * exact) << dtype_name(t);
            continue;
        }
        EXPECT_EQ(dense_error(CoopPrecision::exact, w, x, n_tokens), split) << dtype_name(t) << ": exact is split but for q4";
        EXPECT_LT(split, kSplitBound) << dtype_name(t);
        EXPECT_GT(f16, kSplitGain * split) << dtype_name(t);
    }
}

// Routed experts through the grouped GEMMs, gate and up fused with SwiGLU (the up weights'
// tile split too) and apart, against the exact routed SwiGLU: out[t] += w * down(silu(gate
// x) * up x).
TEST_F(VulkanGemmPrecision, SplitStagingHoldsGroupedSwigluExperts) {
    const int64_t n_tokens = 70, hidden = 100, inter = 72;
    std::vector<std::vector<int64_t>> tokens(3);
    for (int64_t t = 0; t < n_tokens; ++t) tokens[size_t(t % 2)].push_back(t), tokens[2].push_back(t);
    const std::vector<float> h = wide_activations(size_t(n_tokens * hidden), 11);
    for (const DType type : {DType::Q4, DType::BF16}) {
        std::vector<std::unique_ptr<TestWeight>> parts;
        std::vector<std::vector<float>> routing;
        std::vector<SwigluExpertUse> uses(tokens.size());
        std::vector<double> want(size_t(n_tokens * hidden), 0.0);
        for (size_t e = 0; e < tokens.size(); ++e) {
            for (int p = 0; p < 3; ++p)
                parts.push_back(std::make_unique<TestWeight>(type, p < 2 ? inter : hidden, p < 2 ? hidden : inter,
                                                             uint32_t(300 + 3 * e + size_t(p))));
            routing.push_back(test::random_floats(tokens[e].size(), uint32_t(400 + e), 0.1f, 1.0f));
            const TestWeight &gate = *parts[3 * e], &up = *parts[3 * e + 1], &down = *parts[3 * e + 2];
            uses[e] = SwigluExpertUse{gate.view, up.view, down.view, tokens[e].data(), routing[e].data(),
                                      int64_t(tokens[e].size())};
            const std::vector<float> gv = weight_values(gate), uv = weight_values(up), dv = weight_values(down);
            for (size_t i = 0; i < tokens[e].size(); ++i) {
                const float *x = h.data() + tokens[e][i] * hidden;
                const std::vector<double> g = exact_product(gv, inter, hidden, x, 1), u = exact_product(uv, inter, hidden, x, 1);
                std::vector<float> act(static_cast<size_t>(inter));
                for (int64_t k = 0; k < inter; ++k) act[size_t(k)] = float(g[size_t(k)] / (1.0 + std::exp(-g[size_t(k)])) * u[size_t(k)]);
                const std::vector<double> y = exact_product(dv, hidden, inter, act.data(), 1);
                for (int64_t c = 0; c < hidden; ++c) want[size_t(tokens[e][i] * hidden + c)] += routing[e][i] * y[size_t(c)];
            }
        }
        for (const bool fused : {true, false}) {
            vulkan_->set_fused_swiglu(fused);
            double err[3];  // split, f16, exact
            for (const CoopPrecision p : {CoopPrecision::split, CoopPrecision::f16, CoopPrecision::exact}) {
                std::string why;
                ASSERT_TRUE(vulkan_->set_coop_precision(p, why)) << why;
                std::vector<float> got(want.size(), 0.0f);
                const uint64_t grouped = vulkan_->grouped_expert_dispatches();
                vulkan_->routed_swiglu(h.data(), got.data(), n_tokens, hidden, uses.data(), uses.size());
                EXPECT_GT(vulkan_->grouped_expert_dispatches(), grouped) << "grouped GEMMs";
                err[p == CoopPrecision::split ? 0 : p == CoopPrecision::f16 ? 1 : 2] = normalized_error(got, want);
            }
            std::printf("  %-4s grouped%s: error split %.3g, f16 %.3g (%.0fx), exact %.3g\n",
                        std::string(dtype_name(type)).c_str(), fused ? ", SwiGLU fused" : "", err[0], err[1],
                        err[1] / err[0], err[2]);
            EXPECT_GT(err[1], kF16AtLeast) << dtype_name(type) << (fused ? " fused" : "");
            if (type == DType::Q4) {  // one f16 each under split, both split under exact
                EXPECT_EQ(err[0], err[1]) << (fused ? " fused" : "");
                EXPECT_LT(err[2], kSplitBound) << (fused ? " fused" : "");
                EXPECT_GT(err[1], kSplitGain * err[2]) << (fused ? " fused" : "");
                continue;
            }
            EXPECT_EQ(err[2], err[0]) << dtype_name(type) << (fused ? " fused" : "") << ": exact is split but for q4";
            EXPECT_LT(err[0], kSplitBound) << dtype_name(type) << (fused ? " fused" : "");
            EXPECT_GT(err[1], kSplitGain * err[0]) << dtype_name(type) << (fused ? " fused" : "");
        }
        vulkan_->set_fused_swiglu(true);
    }
}

// A tuning whose tiles fit with one f16 but not with the exact staging's second halves is
// refused when the precision changes to exact, naming the shared memory, and the f16
// staging stays. Under split it is taken (q4 stages one f16 of each there) and the types
// that split (f32: both tiles) fall back to main's kernel where theirs do not fit.
TEST_F(VulkanGemmPrecision, StagingThatOutgrowsTheSharedMemoryIsRefused) {
    int refused = 0;
    for (const GemmTuning t : {GemmTuning{4, 1, 2, 64}, GemmTuning{2, 4, 2, 64}}) {
        std::string why;
        ASSERT_TRUE(vulkan_->set_gemm_tuning(GemmTuning{}, why)) << why;
        ASSERT_TRUE(vulkan_->set_coop_precision(CoopPrecision::f16, why)) << why;
        if (!vulkan_->set_gemm_tuning(t, why)) continue;  // too large even with one f16
        if (vulkan_->set_coop_precision(CoopPrecision::exact, why)) continue;  // fits both ways here
        ++refused;
        EXPECT_NE(why.find("shared memory"), std::string::npos) << why;
        EXPECT_NE(why.find("exact"), std::string::npos) << why;
        EXPECT_EQ(vulkan_->coop_precision(), CoopPrecision::f16);
        ASSERT_TRUE(vulkan_->set_coop_precision(CoopPrecision::split, why)) << why;
        EXPECT_EQ(vulkan_->gemm_tuning_for(DType::Q4, true, true), t);
        EXPECT_FALSE(vulkan_->gemm_tuning_for(DType::F32, true, true).tuned()) << t.name();
    }
    EXPECT_GE(refused, 1) << "4x1x2x64 (27648 bytes with one f16, f16 weights' 36864 exact) on 32 KiB";
}

TEST(VulkanGemmPrecisionEnvironment, ReadAtCreationAndABadValueIsNamed) {
    {
        const test::ScopedEnv env("MST_VULKAN_COOPMAT_PRECISION", "");
        std::unique_ptr<VulkanBackend> b;
        try {
            b = std::make_unique<VulkanBackend>(BackendOptions{}, false);
        } catch (const Error &e) {
            GTEST_SKIP() << "no Vulkan device found: " << e.what();
        }
        EXPECT_EQ(b->coop_precision(), CoopPrecision::split) << "the default";
    }
    {
        const test::ScopedEnv env("MST_VULKAN_COOPMAT_PRECISION", "f16");
        VulkanBackend b(BackendOptions{}, false);
        EXPECT_EQ(b.coop_precision(), CoopPrecision::f16);
    }
    {
        const test::ScopedEnv env("MST_VULKAN_COOPMAT_PRECISION", "split");
        VulkanBackend b(BackendOptions{}, false);
        EXPECT_EQ(b.coop_precision(), CoopPrecision::split);
    }
    {
        const test::ScopedEnv env("MST_VULKAN_COOPMAT_PRECISION", "exact");
        VulkanBackend b(BackendOptions{}, false);
        EXPECT_EQ(b.coop_precision(), CoopPrecision::exact);
    }
    for (const char *bad : {"fp16", "Split", "1", "bf16"}) {
        const test::ScopedEnv env("MST_VULKAN_COOPMAT_PRECISION", bad);
        test::expect_error([] { VulkanBackend b(BackendOptions{}, false); }, MST_ERR_INVALID_ARGUMENT,
                           {std::string("MST_VULKAN_COOPMAT_PRECISION='") + bad + "'", "expected split"});
    }
}

#else

TEST(VulkanGemmPrecision, NeedsTheVulkanBackend) { GTEST_SKIP() << "this build has no Vulkan backend"; }

#endif

}  // namespace
}  // namespace mst
