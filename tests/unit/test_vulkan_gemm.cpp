// Op conformance of the prefill GEMMs (shaders/gemm.comp, backends/vulkan/op_gemm.cpp)
// against the CPU backend: every weight type they take, at sizes no tile divides (rows and
// tokens past a 64 x 64 tile, columns ending inside a 32-column step, one token), dense
// products and routed experts grouped per expert. The portable GEMM runs on every Vulkan
// device (lavapipe in CI); the cooperative-matrix GEMM only where the device has
// VK_NV_cooperative_matrix, and its tests say why they skip elsewhere.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/vulkan/gemm_tuning.h"
#include "cpu_op_fixture.h"
#include "scoped_env.h"
#include "test_weight.h"
#include "vulkan_suite.h"

namespace mst {
namespace {

using test::normalized_error;
using test::random_floats;
using test::TestWeight;

// Float weights: float32 sums in different orders. Q8/Q4: the CPU rounds activations to
// 16-bit integers per block, the GPU does not. Cooperative matrices: weights and
// activations rounded to f16 (11-bit significand) before a float32 sum.
constexpr double kFloatBound = 2e-5;
constexpr double kQuantBound = 3e-4;
constexpr double kCoopBound = 3e-3;

const DType kGemmTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8, DType::Q4};

struct Shape {
    int64_t rows, cols, n_tokens;
};
// Rows and tokens below, at and past one 64-wide tile; columns inside and past one 32-wide step.
const Shape kShapes[] = {{1, 1, 1}, {7, 33, 1}, {67, 100, 17}, {130, 257, 65}, {64, 512, 64}, {200, 40, 130}};


class VulkanGemm : public test::VulkanSuite {
protected:
#ifdef MST_HAVE_VULKAN
    void TearDown() override {
        std::string why;
        if (vulkan_) vulkan_->set_gemm(VulkanBackend::GemmKernel::automatic, 16, why);  // the default
        if (vulkan_) vulkan_->set_grouped_experts(true);
        if (vulkan_) vulkan_->set_gemm_prefetch(true);
        if (vulkan_) vulkan_->set_fused_swiglu(true);
        if (vulkan_) vulkan_->set_gemm_tuning(GemmTuning{}, why);  // main's kernel
        if (vulkan_) vulkan_->set_coop_precision(CoopPrecision::split, why);  // the default
    }

    // Every type and shape through gpu.matmul with `kernel` taking every token count: each
    // product one GEMM dispatch, within `bound` (quantized types at least kQuantBound).
    void check_dense_products(VulkanBackend::GemmKernel kernel, double float_bound, double quant_bound) {
        std::string why;
        ASSERT_TRUE(vulkan_->set_gemm(kernel, 1, why)) << why;
        uint32_t seed = 1;
        for (DType t : kGemmTypes) {
            for (const Shape &s : kShapes) {
                const TestWeight w(t, s.rows, s.cols, ++seed);
                const std::vector<float> x = random_floats(size_t(s.n_tokens * s.cols), ++seed);
                std::vector<float> want(size_t(s.n_tokens * s.rows)), got(want.size(), NAN);
                cpu_.matmul(w.view, x.data(), want.data(), s.n_tokens);
                const uint64_t before = vulkan_->gemm_dispatches();
                vulkan_->matmul(w.view, x.data(), got.data(), s.n_tokens);
                EXPECT_EQ(vulkan_->gemm_dispatches(), before + 1) << dtype_name(t);
                EXPECT_LT(normalized_error(got, want), dtype_is_quantized(t) ? quant_bound : float_bound)
                    << dtype_name(t) << " " << s.rows << "x" << s.cols << " n_tokens " << s.n_tokens;
            }
        }
    }

    // A prefill's routed experts: 70 tokens over 5 experts with uneven uses (one unused,
    // one taking every token). Grouped: the gate, up and down products of all experts in
    // grouped GEMM dispatches (a few: one per buffer their weights share); else each
    // expert's gate, up and down one GEMM over its tokens.
    void check_routed_experts(VulkanBackend::GemmKernel kernel, double float_bound, double quant_bound,
                              bool grouped) {
        std::vector<std::vector<int64_t>> tokens(5);
        for (int64_t t = 0; t < 70; ++t) {
            tokens[size_t(t % 3)].push_back(t);  // experts 0..2: a third each
            tokens[4].push_back(t);              // expert 4: all; expert 3: none
        }
        check_routed_experts(kernel, float_bound, quant_bound, grouped, tokens, 70, 96, 72,
                             {DType::Q4, DType::Q8, DType::BF16});
    }

    void check_routed_experts(VulkanBackend::GemmKernel kernel, double float_bound, double quant_bound, bool grouped,
                              const std::vector<std::vector<int64_t>> &tokens, int64_t n_tokens, int64_t hidden,
                              int64_t inter, const std::vector<DType> &types) {
        std::string why;
        ASSERT_TRUE(vulkan_->set_gemm(kernel, 2, why)) << why;
        vulkan_->set_grouped_experts(grouped);
        size_t used = 0;
        for (const auto &t : tokens) used += t.empty() ? 0 : 1;
        // Grouped: gate and up apart (then a silu_mul), and fused with SwiGLU.
        for (const bool fused : grouped ? std::vector<bool>{false, true} : std::vector<bool>{false})
        for (DType t : types) {
            vulkan_->set_fused_swiglu(fused);
            std::vector<std::unique_ptr<TestWeight>> parts;
            std::vector<std::vector<float>> weights;
            std::vector<SwigluExpertUse> uses(tokens.size());
            for (size_t e = 0; e < tokens.size(); ++e) {
                for (int p = 0; p < 3; ++p)
                    parts.push_back(std::make_unique<TestWeight>(t, p < 2 ? inter : hidden, p < 2 ? hidden : inter,
                                                                 uint32_t(500 + 3 * e + size_t(p))));
                weights.push_back(random_floats(tokens[e].size(), uint32_t(600 + e), 0.1f, 1.0f));
                uses[e] = SwigluExpertUse{parts[3 * e]->view, parts[3 * e + 1]->view, parts[3 * e + 2]->view,
                                          tokens[e].data(), weights[e].data(), int64_t(tokens[e].size())};
            }
            const std::vector<float> h = random_floats(size_t(n_tokens * hidden), 71);
            const std::vector<float> start = random_floats(size_t(n_tokens * hidden), 72);
            std::vector<float> want = start, got = start;
            cpu_.routed_swiglu(h.data(), want.data(), n_tokens, hidden, uses.data(), uses.size());
            const uint64_t before = vulkan_->gemm_dispatches(), grouped0 = vulkan_->grouped_expert_dispatches();
            const uint64_t fused0 = vulkan_->fused_swiglu_dispatches();
            vulkan_->routed_swiglu(h.data(), got.data(), n_tokens, hidden, uses.data(), uses.size());
            if (grouped) {
                const uint64_t products = fused ? 2 : 3;  // (gate and up) or gate, up; then down
                EXPECT_EQ(vulkan_->gemm_dispatches(), before) << "no GEMM of one expert";
                EXPECT_GE(vulkan_->grouped_expert_dispatches(), grouped0 + products) << "products grouped";
                EXPECT_LE(vulkan_->grouped_expert_dispatches(), grouped0 + products * used) << "at most one per expert";
                if (fused) EXPECT_GE(vulkan_->fused_swiglu_dispatches(), fused0 + 1);
                else EXPECT_EQ(vulkan_->fused_swiglu_dispatches(), fused0);
            } else {
                EXPECT_EQ(vulkan_->gemm_dispatches(), before + used * 3) << "gate, up, down of each used expert";
                EXPECT_EQ(vulkan_->grouped_expert_dispatches(), grouped0);
            }
            EXPECT_LT(normalized_error(got, want), dtype_is_quantized(t) ? quant_bound : float_bound)
                << dtype_name(t) << (grouped ? " grouped" : " per expert") << (fused ? ", SwiGLU fused" : "");
        }
    }
#endif
    CpuBackend cpu_{2, cpu_isa_best()};
};

#ifdef MST_HAVE_VULKAN

// MST_VULKAN_COOP_TUNING's grammar and the shader's rules (gemm_tuning.h), no device needed.
TEST(GemmTuning, ParsesTuningsAndNamesWhatIsWrong) {
    GemmTuning t;
    std::string why;
    ASSERT_TRUE(parse_gemm_tuning("2x1x2x64", t, why)) << why;
    EXPECT_EQ(t, (GemmTuning{2, 1, 2, 64}));
    EXPECT_EQ(t.name(), "2x1x2x64");
    EXPECT_EQ(t.tile_rows(), 32u);
    EXPECT_EQ(t.threads(), 256u);
    // A fifth number: tokens a pass. 32 puts the 4 subgroups of 2 x 2 sums side by side along
    // the rows (128 rows), 64 is the four-number form's.
    ASSERT_TRUE(parse_gemm_tuning("2x2x1x32x32", t, why)) << why;
    EXPECT_EQ(t, (GemmTuning{2, 2, 1, 32, 32}));
    EXPECT_EQ(t.name(), "2x2x1x32x32");
    EXPECT_EQ(t.tile_rows(), 128u);
    ASSERT_TRUE(parse_gemm_tuning("1x1x1x32x32", t, why)) << why;
    EXPECT_EQ(t.tile_rows(), 32u);  // 2 subgroups along 32 tokens, 2 along the rows
    ASSERT_TRUE(parse_gemm_tuning("1x2x2x64x32x2", t, why)) << why;
    EXPECT_EQ(t, (GemmTuning{1, 2, 2, 64, 32, 2}));
    EXPECT_EQ(t.name(), "1x2x2x64x32x2");
    ASSERT_TRUE(parse_gemm_tuning("2x1x1x32x64x2", t, why)) << why;
    EXPECT_EQ(t.name(), "2x1x1x32x64x2");  // TN named when STAGES is
    ASSERT_TRUE(parse_gemm_tuning("2x1x2x64x64x1", t, why)) << why;
    EXPECT_EQ(t.name(), "2x1x2x64");
    ASSERT_TRUE(parse_gemm_tuning("2x1x2x64x64", t, why)) << why;
    EXPECT_EQ(t, (GemmTuning{2, 1, 2, 64}));
    EXPECT_EQ(t.name(), "2x1x2x64");
    ASSERT_TRUE(parse_gemm_tuning("main", t, why)) << why;
    EXPECT_FALSE(t.tuned());
    EXPECT_EQ(t.tile_rows(), 64u);
    EXPECT_EQ(t.name(), "main");
    const struct {
        const char *text, *names;
    } bad[] = {{"", "expected main"},         {"2x2x2", "expected main"},  {"2x2x2x32x32x1x1", "expected main"},
               {"2x2xx32", "expected main"},  {"2x2x2x-32", "expected main"}, {"a2x2x2x32", "expected main"},
               {"0x2x2x32", "MI"},            {"9x1x1x32", "MI"},          {"2x3x1x32", "NJ"},
               {"2x2x3x32", "SPLITK"},        {"2x2x16x128", "SPLITK"},    {"2x2x2x48", "BK"},
               {"2x2x1x512", "BK"},           {"2x2x4x32", "too narrow"},  {"1x1x2x32", "too narrow"},
               {"2x2x2x32x1", "TN"},          {"2x2x1x32x48", "TN"},       {"1x4x1x32x32", "TN"},
               {"1x2x2x32x32", "too narrow"}, {"2x2x1x32x32x3", "STAGES"},     {"2x2x1x32x32x0", "STAGES"},
               {"2x2x1x32x32x2x1", "expected main"}};
    for (const auto &b : bad) {
        t = GemmTuning{1, 1, 1, 32};
        why.clear();
        EXPECT_FALSE(parse_gemm_tuning(b.text, t, why)) << b.text;
        EXPECT_NE(why.find(b.names), std::string::npos) << b.text << ": " << why;
        EXPECT_EQ(t, (GemmTuning{1, 1, 1, 32})) << "left as it was: " << b.text;
    }
}

// DENSE/GROUPED: one tuning each; one alone serves both; a bad half is named and leaves both.
TEST(GemmTuning, ParsesOneTuningForEachKindOfProduct) {
    GemmTuning dense, grouped;
    std::string why;
    ASSERT_TRUE(parse_gemm_tunings("1x2x4x128/2x2x1x32x32", dense, grouped, why)) << why;
    EXPECT_EQ(dense, (GemmTuning{1, 2, 4, 128}));
    EXPECT_EQ(grouped, (GemmTuning{2, 2, 1, 32, 32}));
    EXPECT_EQ(gemm_tunings_name(dense, grouped), "1x2x4x128/2x2x1x32x32");
    ASSERT_TRUE(parse_gemm_tunings("main/2x2x1x32x32", dense, grouped, why)) << why;
    EXPECT_FALSE(dense.tuned());
    EXPECT_EQ(grouped, (GemmTuning{2, 2, 1, 32, 32}));
    ASSERT_TRUE(parse_gemm_tunings("2x1x2x64", dense, grouped, why)) << why;
    EXPECT_EQ(dense, (GemmTuning{2, 1, 2, 64}));
    EXPECT_EQ(grouped, dense);
    EXPECT_EQ(gemm_tunings_name(dense, grouped), "2x1x2x64");
    for (const char *bad : {"2x1x2x64/", "/2x1x2x64", "2x1x2x64/1x4x1x32x32", "2x1x2x64/main/main"}) {
        why.clear();
        EXPECT_FALSE(parse_gemm_tunings(bad, dense, grouped, why)) << bad;
        EXPECT_FALSE(why.empty()) << bad;
        EXPECT_EQ(dense, (GemmTuning{2, 1, 2, 64})) << "left as it was: " << bad;
        EXPECT_EQ(grouped, (GemmTuning{2, 1, 2, 64})) << "left as it was: " << bad;
    }
}

TEST(GemmTuning, SharedMemoryCountsTheStagedTilesAndTheSums) {
    // 2x2x2x32: 64 rows; rows of 5 uvec4 (80 bytes) for 64 weight (+64 up) and 64 token rows,
    // or, over them once the columns are done, 64 x 68 floats of sums (17408 bytes): the
    // larger of the two. Split: every staged row twice (hi and lo).
    const GemmTuning t{2, 2, 2, 32};
    EXPECT_EQ(t.shared_bytes(false, CoopPrecision::f16), 4u * 64 * 68);  // staged 10240
    EXPECT_EQ(t.shared_bytes(true, CoopPrecision::f16), 4u * 64 * 68);   // staged 15360
    EXPECT_EQ(t.shared_bytes(false, CoopPrecision::split), 80u * 256);
    EXPECT_EQ(t.shared_bytes(true, CoopPrecision::split), 80u * 384);
    // 2x2x1x32x32: 128 rows x 32 tokens a pass: 128 weight + 128 up + 32 token rows, sums of
    // 32 x 132 floats.
    const GemmTuning wide{2, 2, 1, 32, 32};
    // Two staged copies: twice the staging, the sums unchanged.
    const GemmTuning two{2, 2, 1, 32, 32, 2};
    EXPECT_EQ(two.shared_bytes(false, CoopPrecision::f16), 2u * 12800);
    EXPECT_EQ(two.shared_bytes(true, CoopPrecision::f16, DType::Q4), 2u * 80 * 288);
    EXPECT_EQ(wide.shared_bytes(false, CoopPrecision::f16), 4u * 32 * 132);  // staged 12800
    EXPECT_EQ(wide.shared_bytes(true, CoopPrecision::f16), 80u * 288);
    EXPECT_EQ(wide.shared_bytes(true, CoopPrecision::split), 80u * 576);
}

TEST_F(VulkanGemm, PortableGemmMatchesCpuForEveryType) {
    check_dense_products(VulkanBackend::GemmKernel::portable, kFloatBound, kQuantBound);
    vulkan_->set_gemm_prefetch(false);  // gemm_serial_*: each step fetched when it begins
    check_dense_products(VulkanBackend::GemmKernel::portable, kFloatBound, kQuantBound);
}

TEST_F(VulkanGemm, PortableGemmRunsRoutedExpertsGroupedPerExpert) {
    check_routed_experts(VulkanBackend::GemmKernel::portable, kFloatBound, kQuantBound, false);
}

TEST_F(VulkanGemm, PortableGroupedGemmRunsRoutedExperts) {
    check_routed_experts(VulkanBackend::GemmKernel::portable, kFloatBound, kQuantBound, true);
}

// Experts of 0, 1, 17, 70 and 33 of 70 tokens (tiles of one token, a partial tile, one full
// and one partial; 33: one full 32-token pass and a pass of one), 100-wide rows (inside a
// 32-column step; down's 100 rows past one 64-row tile) and 72 intermediate rows, every type
// the GEMM takes.
std::vector<std::vector<int64_t>> odd_expert_tokens() {
    std::vector<std::vector<int64_t>> tokens(5);
    tokens[1] = {37};
    for (int64_t t = 0; t < 17; ++t) tokens[2].push_back(3 * t + 1);
    for (int64_t t = 0; t < 70; ++t) tokens[3].push_back(t);
    for (int64_t t = 0; t < 33; ++t) tokens[4].push_back(2 * t + 3);
    return tokens;
}

TEST_F(VulkanGemm, PortableGroupedGemmMatchesCpuAtOddSizes) {
    check_routed_experts(VulkanBackend::GemmKernel::portable, kFloatBound, kQuantBound, true, odd_expert_tokens(), 70,
                         100, 72, {std::begin(kGemmTypes), std::end(kGemmTypes)});
}

TEST_F(VulkanGemm, CooperativeMatrixGroupedGemmMatchesCpuAtOddSizes) {
    std::string why;
    if (!vulkan_->set_gemm(VulkanBackend::GemmKernel::coopmat, 1, why))
        GTEST_SKIP() << "no cooperative-matrix GEMM on '" << vulkan_->device_name() << "': " << why;
    check_routed_experts(VulkanBackend::GemmKernel::coopmat, kCoopBound, kCoopBound, true, odd_expert_tokens(), 70, 100,
                         72, {std::begin(kGemmTypes), std::end(kGemmTypes)});
}

// Experts of different types cannot share a grouped dispatch: each takes its own products.
TEST_F(VulkanGemm, ExpertsOfMixedTypesTakeAProductEach) {
    std::string why;
    ASSERT_TRUE(vulkan_->set_gemm(VulkanBackend::GemmKernel::portable, 16, why)) << why;
    const int64_t hidden = 64, inter = 40, n_tokens = 32;
    std::vector<int64_t> tokens(static_cast<size_t>(n_tokens));
    for (int64_t t = 0; t < n_tokens; ++t) tokens[size_t(t)] = t;
    const DType types[2] = {DType::Q4, DType::BF16};
    std::vector<std::unique_ptr<TestWeight>> parts;
    std::vector<SwigluExpertUse> uses(2);
    const std::vector<float> weights = random_floats(tokens.size(), 90, 0.1f, 1.0f);
    for (size_t e = 0; e < 2; ++e) {
        for (int p = 0; p < 3; ++p)
            parts.push_back(std::make_unique<TestWeight>(types[e], p < 2 ? inter : hidden, p < 2 ? hidden : inter,
                                                         uint32_t(900 + 3 * e + size_t(p))));
        uses[e] = SwigluExpertUse{parts[3 * e]->view, parts[3 * e + 1]->view, parts[3 * e + 2]->view, tokens.data(),
                                  weights.data(), n_tokens};
    }
    const std::vector<float> h = random_floats(size_t(n_tokens * hidden), 91);
    std::vector<float> want(size_t(n_tokens * hidden), 0.0f), got = want;
    cpu_.routed_swiglu(h.data(), want.data(), n_tokens, hidden, uses.data(), uses.size());
    const uint64_t grouped0 = vulkan_->grouped_expert_dispatches(), gemm0 = vulkan_->gemm_dispatches();
    vulkan_->routed_swiglu(h.data(), got.data(), n_tokens, hidden, uses.data(), uses.size());
    EXPECT_EQ(vulkan_->grouped_expert_dispatches(), grouped0);
    EXPECT_EQ(vulkan_->gemm_dispatches(), gemm0 + 6);
    EXPECT_LT(normalized_error(got, want), kQuantBound);
}

TEST_F(VulkanGemm, CooperativeMatrixGemmMatchesCpuForEveryType) {
    std::string why;
    if (!vulkan_->set_gemm(VulkanBackend::GemmKernel::coopmat, 1, why))
        GTEST_SKIP() << "no cooperative-matrix GEMM on '" << vulkan_->device_name() << "': " << why
                     << " (it runs on an NVIDIA GPU; lavapipe has none)";
    check_dense_products(VulkanBackend::GemmKernel::coopmat, kCoopBound, kCoopBound);
    vulkan_->set_gemm_prefetch(false);
    check_dense_products(VulkanBackend::GemmKernel::coopmat, kCoopBound, kCoopBound);
}

TEST_F(VulkanGemm, CooperativeMatrixGemmRunsRoutedExperts) {
    std::string why;
    if (!vulkan_->set_gemm(VulkanBackend::GemmKernel::coopmat, 1, why))
        GTEST_SKIP() << "no cooperative-matrix GEMM on '" << vulkan_->device_name() << "': " << why;
    check_routed_experts(VulkanBackend::GemmKernel::coopmat, kCoopBound, kCoopBound, false);
    check_routed_experts(VulkanBackend::GemmKernel::coopmat, kCoopBound, kCoopBound, true);
}

// More token uses than one dispatch gathers (65535 rows): 8 experts each taking tokens
// 1..n-1 of 8200 (so none reads h in place), gathered in two dispatches. The portable
// GEMM, whose float sums the bound is for (a device with cooperative matrices would take
// them, with f16 inputs, by default).
TEST_F(VulkanGemm, RoutedExpertsGatherMoreRowsThanOneDispatch) {
    std::string why;
    ASSERT_TRUE(vulkan_->set_gemm(VulkanBackend::GemmKernel::portable, 16, why)) << why;
    const int64_t hidden = 8, inter = 4, n_tokens = 8200;
    std::vector<int64_t> tokens(size_t(n_tokens - 1));
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int64_t(i) + 1;
    std::vector<std::unique_ptr<TestWeight>> parts;
    std::vector<std::vector<float>> weights;
    std::vector<SwigluExpertUse> uses(8);
    for (size_t e = 0; e < uses.size(); ++e) {
        for (int p = 0; p < 3; ++p)
            parts.push_back(std::make_unique<TestWeight>(DType::BF16, p < 2 ? inter : hidden, p < 2 ? hidden : inter,
                                                         uint32_t(700 + 3 * e + size_t(p))));
        weights.push_back(random_floats(tokens.size(), uint32_t(800 + e), 0.1f, 1.0f));
        uses[e] = SwigluExpertUse{parts[3 * e]->view, parts[3 * e + 1]->view, parts[3 * e + 2]->view, tokens.data(),
                                  weights[e].data(), int64_t(tokens.size())};
    }
    const std::vector<float> h = random_floats(size_t(n_tokens * hidden), 81);
    std::vector<float> want(size_t(n_tokens * hidden), 0.0f), got = want;
    cpu_.routed_swiglu(h.data(), want.data(), n_tokens, hidden, uses.data(), uses.size());
    vulkan_->routed_swiglu(h.data(), got.data(), n_tokens, hidden, uses.data(), uses.size());
    EXPECT_LT(normalized_error(got, want), kFloatBound);
}

// The automatic choice: a GEMM from min_tokens on, the matrix-vector kernel below it and
// for types the GEMM does not take; `off` never.
TEST_F(VulkanGemm, BatchesOfTokensTakeTheGemmAndSingleTokensDoNot) {
    std::string why;
    ASSERT_TRUE(vulkan_->set_gemm(VulkanBackend::GemmKernel::automatic, 16, why)) << why;
    const TestWeight w(DType::Q4, 40, 64, 3), mx(DType::MXFP4, 40, 64, 4);
    const std::vector<float> x = random_floats(size_t(16 * 64), 5);
    std::vector<float> y(16 * 40);
    uint64_t n = vulkan_->gemm_dispatches();
    vulkan_->matmul(w.view, x.data(), y.data(), 15);
    EXPECT_EQ(vulkan_->gemm_dispatches(), n);
    vulkan_->matmul(w.view, x.data(), y.data(), 16);
    EXPECT_EQ(vulkan_->gemm_dispatches(), n + 1);
    vulkan_->matmul(mx.view, x.data(), y.data(), 16);
    EXPECT_EQ(vulkan_->gemm_dispatches(), n + 1) << "MXFP4 stays on the matrix-vector kernel";
    ASSERT_TRUE(vulkan_->set_gemm(VulkanBackend::GemmKernel::off, 1, why)) << why;
    vulkan_->matmul(w.view, x.data(), y.data(), 16);
    EXPECT_EQ(vulkan_->gemm_dispatches(), n + 1);
    EXPECT_FALSE(vulkan_->set_gemm(VulkanBackend::GemmKernel::portable, 0, why));
    EXPECT_NE(why.find("min_tokens"), std::string::npos) << why;
}

// The tuned tiling's 32-token passes (TN 32): 4 subgroups of 2 x 2 sums along 128 rows
// (the grouped experts' candidate), of 1 x 2 along 64, 2 x 2 subgroups of 1 x 1 sums (32
// rows), and two column groups over 64-column steps. A 64-token tile takes two passes.
// Then two staged copies (STAGES 2: the next step stored during this one) at 32-token
// passes (split staging; two column groups) and at one 64-token pass.
std::vector<GemmTuning> pass_tunings_to_test() {
    return {{2, 2, 1, 32, 32}, {1, 2, 1, 32, 32}, {1, 1, 1, 32, 32}, {1, 2, 2, 64, 32},
            {1, 1, 1, 32, 32, 2}, {1, 1, 2, 64, 32, 2}, {2, 1, 1, 32, 64, 2}};
}

// The tuned tiling (gemm_tuned.comp, MST_VULKAN_COOP_TUNING): shapes of the 16x16 sums per
// subgroup (MI x NJ: 4 x 1, 1 x 4, 2 x 2, 2 x 1 and 1 x 1, workgroups of 64, 32 and 16 rows),
// column groups splitting a step (SPLITK 1, 2 and 4) and steps of 32 and 64 columns, then
// the 32-token passes. Those the device's shared memory cannot hold are skipped, saying so
// (lavapipe: 32 KiB).
std::vector<GemmTuning> tunings_to_test() {
    std::vector<GemmTuning> out = {{4, 1, 1, 32}, {1, 4, 2, 32}, {2, 2, 2, 32}, {2, 1, 1, 32},
                                   {1, 1, 1, 64}, {2, 1, 2, 64}, {2, 2, 4, 64}, {4, 1, 2, 64}};
    for (const GemmTuning &t : pass_tunings_to_test()) out.push_back(t);
    return out;
}

// Runs `check` under every tuning of `tunings` the device holds, with the split staging (the
// default) where it fits and else with one f16 (a tile half the size), so that both stagings
// are run (at least `least` tunings, `least_split` of them split); those the device cannot
// hold either way are refused for shared memory only. Leaves the split precision set.
template <class Check>
void for_each_tuning(VulkanBackend &b, Check check, const std::vector<GemmTuning> &tunings = tunings_to_test(),
                     int least = 4, int least_split = 2) {
    int run = 0, run_split = 0;
    // Every type's every variant takes the tuning (none falls back to main's kernel).
    auto every_type_takes = [&b](const GemmTuning &t, std::string &why) {
        for (DType type : kGemmTypes)
            for (const bool grouped : {false, true})
                for (const bool swiglu : {false, true})
                    if (b.gemm_tuning_for(type, grouped, swiglu) != t) {
                        why = t.name() + " needs more shared memory than the device has for " + std::string(dtype_name(type)) +
                              (swiglu ? " with SwiGLU" : "");
                        return false;
                    }
        return true;
    };
    for (const GemmTuning &t : tunings) {
        std::string why;
        for (const CoopPrecision p : {CoopPrecision::split, CoopPrecision::f16}) {
            ASSERT_TRUE(b.set_gemm_tuning(GemmTuning{}, why)) << why;
            ASSERT_TRUE(b.set_coop_precision(p, why)) << why;
            if (b.set_gemm_tuning(t, why) && every_type_takes(t, why)) break;
            std::printf("  %s not run with %s staging on '%s': %s\n", t.name().c_str(), coop_precision_name(p),
                        b.device_name().c_str(), why.c_str());
            EXPECT_NE(why.find("shared memory"), std::string::npos) << t.name() << ": " << why;
        }
        if (b.gemm_tuning() != t || !every_type_takes(t, why)) continue;
        SCOPED_TRACE("tuning " + t.name() + ", " + coop_precision_name(b.coop_precision()) + " staging");
        ++run;
        if (b.coop_precision() == CoopPrecision::split) ++run_split;
        check();
    }
    std::string why;
    ASSERT_TRUE(b.set_gemm_tuning(GemmTuning{}, why)) << why;
    ASSERT_TRUE(b.set_coop_precision(CoopPrecision::split, why)) << why;
    EXPECT_GE(run, least);
    EXPECT_GE(run_split, least_split);
}

// Without cooperative matrices the tuned tiling's 16x16 products are float sums of the
// f16-staged tiles: the tiling, the split over columns, the skipped subgroups and their
// reduction are the cooperative kernel's, checked here on every device (kCoopBound: inputs
// rounded to f16).
TEST_F(VulkanGemm, TunedTilingWithFloatProductsMatchesCpu) {
    for_each_tuning(*vulkan_, [&] { check_dense_products(VulkanBackend::GemmKernel::portable, kCoopBound, kCoopBound); });
}

TEST_F(VulkanGemm, TunedGroupedTilingWithFloatProductsMatchesCpu) {
    for_each_tuning(*vulkan_, [&] {
        check_routed_experts(VulkanBackend::GemmKernel::portable, kCoopBound, kCoopBound, true, odd_expert_tokens(), 70,
                             100, 72, {DType::Q4, DType::BF16});
    });
}

// The 32-token passes with every weight type through the grouped products (gate and up
// apart, and fused with SwiGLU): the passes of a 64-token tile, the 1- and 33-token experts,
// each type's staging. Every one of them fits lavapipe's 32 KiB, 2 with the split staging.
TEST_F(VulkanGemm, TunedGroupedPassesMatchCpuForEveryType) {
    for_each_tuning(
        *vulkan_,
        [&] {
            check_routed_experts(VulkanBackend::GemmKernel::portable, kCoopBound, kCoopBound, true,
                                 odd_expert_tokens(), 70, 100, 72, {std::begin(kGemmTypes), std::end(kGemmTypes)});
        },
        pass_tunings_to_test(), 4, 2);
}

// The tuning takes effect: main's portable kernel sums float inputs (error near float
// rounding), the tuned tiling with one-f16 staging rounds them to f16 first (an error far
// above it; the split staging: test_vulkan_gemm_precision).
TEST_F(VulkanGemm, TunedTilingReplacesMainsKernel) {
    std::string why;
    ASSERT_TRUE(vulkan_->set_gemm(VulkanBackend::GemmKernel::portable, 1, why)) << why;
    ASSERT_TRUE(vulkan_->set_coop_precision(CoopPrecision::f16, why)) << why;
    const TestWeight w(DType::F32, 130, 257, 42);
    const std::vector<float> x = random_floats(size_t(65 * 257), 43);
    std::vector<float> want(size_t(65 * 130)), got(want.size());
    cpu_.matmul(w.view, x.data(), want.data(), 65);
    vulkan_->matmul(w.view, x.data(), got.data(), 65);
    EXPECT_LT(normalized_error(got, want), kFloatBound) << "main's kernel";
    ASSERT_TRUE(vulkan_->set_gemm_tuning({2, 2, 2, 32}, why)) << why;
    vulkan_->matmul(w.view, x.data(), got.data(), 65);
    const double e = normalized_error(got, want);
    EXPECT_GT(e, 10 * kFloatBound) << "f16-rounded inputs: the tuned tiling ran";
    EXPECT_LT(e, kCoopBound);
}

TEST_F(VulkanGemm, CooperativeMatrixTunedTilingsMatchCpu) {
    std::string why;
    if (!vulkan_->set_gemm(VulkanBackend::GemmKernel::coopmat, 1, why))
        GTEST_SKIP() << "no cooperative-matrix GEMM on '" << vulkan_->device_name() << "': " << why
                     << " (it runs on an NVIDIA GPU; lavapipe has none)";
    for_each_tuning(*vulkan_, [&] {
        check_dense_products(VulkanBackend::GemmKernel::coopmat, kCoopBound, kCoopBound);
        check_routed_experts(VulkanBackend::GemmKernel::coopmat, kCoopBound, kCoopBound, true, odd_expert_tokens(), 70,
                             100, 72, {std::begin(kGemmTypes), std::end(kGemmTypes)});
    });
}

// Each kind of product takes its own tiling: the dense products main's kernel (float sums,
// errors near float rounding) and the grouped experts the 32-token passes (f16 inputs), and
// the other way round. A dense tuning needs no room for SwiGLU's up tile.
TEST_F(VulkanGemm, DenseAndGroupedProductsTakeTheirOwnTuning) {
    std::string why;
    ASSERT_TRUE(vulkan_->set_coop_precision(CoopPrecision::f16, why)) << why;
    const GemmTuning wide{1, 2, 1, 32, 32};
    ASSERT_TRUE(vulkan_->set_gemm_tunings(GemmTuning{}, wide, why)) << why;
    EXPECT_FALSE(vulkan_->gemm_tuning().tuned());
    EXPECT_EQ(vulkan_->gemm_tuning_grouped(), wide);
    check_dense_products(VulkanBackend::GemmKernel::portable, kFloatBound, kQuantBound);
    check_routed_experts(VulkanBackend::GemmKernel::portable, kCoopBound, kCoopBound, true, odd_expert_tokens(), 70,
                         100, 72, {DType::Q4, DType::F32});
    // The grouped products ran the tuned kernel: f32 weights rounded to f16 lie far above
    // float rounding.
    ASSERT_TRUE(vulkan_->set_gemm_tunings(wide, GemmTuning{}, why)) << why;
    check_routed_experts(VulkanBackend::GemmKernel::portable, kFloatBound, kQuantBound, true, odd_expert_tokens(), 70,
                         100, 72, {DType::Q4, DType::F32});
    const TestWeight w(DType::F32, 130, 257, 42);
    const std::vector<float> x = random_floats(size_t(65 * 257), 43);
    std::vector<float> want(size_t(65 * 130)), got(want.size());
    cpu_.matmul(w.view, x.data(), want.data(), 65);
    vulkan_->matmul(w.view, x.data(), got.data(), 65);
    const double e = normalized_error(got, want);
    EXPECT_GT(e, 10 * kFloatBound) << "f16-rounded inputs: the dense product took the tuned tiling";
    EXPECT_LT(e, kCoopBound);
}

// A tuning is taken where its variant for the product's weight type fits: 2x2x1x32x32 under
// the split staging stages q4's SwiGLU tiles as one f16 (23040 bytes) but f32's twice
// (46080): on lavapipe (32768) the grouped q4 products take it, the grouped f32 ones main's
// kernel (float sums: errors within float rounding), while the dense f32 product (25600)
// takes it. 8x4x1x256 fits no type and is refused.
TEST_F(VulkanGemm, TypesWhoseTilesDoNotFitTakeMainsKernel) {
    if (vulkan_->device_name().find("llvmpipe") == std::string::npos)
        GTEST_SKIP() << "counts lavapipe's 32 KiB of shared memory; '" << vulkan_->device_name() << "' has its own";
    std::string why;
    const GemmTuning wide{2, 2, 1, 32, 32};
    ASSERT_TRUE(vulkan_->set_gemm_tunings(wide, wide, why)) << why;
    EXPECT_EQ(vulkan_->gemm_tuning_for(DType::Q4, true, true), wide);
    EXPECT_FALSE(vulkan_->gemm_tuning_for(DType::F32, true, true).tuned());
    EXPECT_EQ(vulkan_->gemm_tuning_for(DType::F32, true, false), wide);  // gate, up apart: 25600
    EXPECT_EQ(vulkan_->gemm_tuning_for(DType::F32, false, false), wide);
    check_routed_experts(VulkanBackend::GemmKernel::portable, kFloatBound, kCoopBound, true, odd_expert_tokens(), 70,
                         100, 72, {DType::F32});  // fused: main's; apart: the tuned tiling's f32 split (~1e-7)
    check_routed_experts(VulkanBackend::GemmKernel::portable, kCoopBound, kCoopBound, true, odd_expert_tokens(), 70,
                         100, 72, {DType::Q4});
    EXPECT_FALSE(vulkan_->set_gemm_tunings(GemmTuning{}, GemmTuning{8, 4, 1, 256}, why));
    EXPECT_NE(why.find("shared memory"), std::string::npos) << why;
    EXPECT_EQ(vulkan_->gemm_tuning_grouped(), wide) << "the last good pair stays";
}

// A tuning the device cannot hold is refused with the reason, and the last good one stays.
TEST_F(VulkanGemm, TuningBeyondTheDeviceIsRefused) {
    std::string why;
    ASSERT_TRUE(vulkan_->set_gemm_tuning({2, 1, 1, 32}, why)) << why;  // fits 32 KiB with the split
    EXPECT_FALSE(vulkan_->set_gemm_tuning({8, 4, 1, 256}, why));  // 512 rows x 256 columns: ~400 KiB
    EXPECT_NE(why.find("shared memory"), std::string::npos) << why;
    EXPECT_FALSE(vulkan_->set_gemm_tuning({2, 3, 1, 32}, why));
    EXPECT_NE(why.find("NJ"), std::string::npos) << why;
    EXPECT_EQ(vulkan_->gemm_tuning(), (GemmTuning{2, 1, 1, 32}));
}

TEST_F(VulkanGemm, BadTuningInTheEnvironmentIsNamed) {
    for (const char *bad : {"fast", "2x2x2", "2x2x2x48", "8x4x1x256", "2x2x2x32x1", "0x2x2x32"}) {
        ::setenv("MST_VULKAN_COOP_TUNING", bad, 1);
        try {
            VulkanBackend b(BackendOptions{}, false);
            ADD_FAILURE() << "a backend was created with MST_VULKAN_COOP_TUNING=" << bad;
        } catch (const Error &e) {
            EXPECT_NE(std::string(e.what()).find("MST_VULKAN_COOP_TUNING"), std::string::npos) << e.what();
        }
    }
    ::setenv("MST_VULKAN_COOP_TUNING", "1x2x1x32", 1);  // fits 32 KiB with the split staging
    {
        VulkanBackend b(BackendOptions{}, false);
        EXPECT_EQ(b.gemm_tuning(), (GemmTuning{1, 2, 1, 32}));
    }
    {
        // 2x2x1x32x32 (128 rows) fits lavapipe's 32 KiB only with one f16 (23040 bytes,
        // 46080 split): the precision is read before the tuning is checked.
        const test::ScopedEnv f16("MST_VULKAN_COOPMAT_PRECISION", "f16");
        ::setenv("MST_VULKAN_COOP_TUNING", "2x2x1x32x32", 1);
        VulkanBackend b(BackendOptions{}, false);
        EXPECT_EQ(b.gemm_tuning(), (GemmTuning{2, 2, 1, 32, 32}));
        EXPECT_EQ(b.coop_precision(), CoopPrecision::f16);
    }
    ::setenv("MST_VULKAN_COOP_TUNING", "main", 1);
    {
        VulkanBackend b(BackendOptions{}, false);
        EXPECT_FALSE(b.gemm_tuning().tuned());
    }
    ::unsetenv("MST_VULKAN_COOP_TUNING");
}

TEST_F(VulkanGemm, BadEnvironmentValueIsNamed) {
    ::setenv("MST_VULKAN_GEMM", "fast", 1);
    try {
        VulkanBackend b(BackendOptions{}, false);
        ADD_FAILURE() << "a backend was created with MST_VULKAN_GEMM=fast";
    } catch (const Error &e) {
        EXPECT_NE(std::string(e.what()).find("MST_VULKAN_GEMM='fast'"), std::string::npos) << e.what();
    }
    ::unsetenv("MST_VULKAN_GEMM");
    // The on/off switches (MST_VULKAN_GROUPED_EXPERTS, ...): test_vulkan_env_switch.
}

#endif

}  // namespace
}  // namespace mst
