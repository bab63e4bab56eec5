// Op conformance of the prefill GEMMs (shaders/gemm.comp, backends/vulkan/op_gemm.cpp)
// against the CPU backend: every weight type they take, at sizes no tile divides (rows and
// tokens past a 64 x 64 tile, columns ending inside a 32-column step, one token), dense
// products and routed experts grouped per expert. The portable GEMM runs on every Vulkan
// device (lavapipe in CI); the cooperative-matrix GEMM only where the device has
// VK_NV_cooperative_matrix, and its tests say why they skip elsewhere.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "cpu_op_fixture.h"
#include "test_weight.h"
#include "vulkan_suite.h"

namespace mst {
namespace {

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

double normalized_error(const std::vector<float> &got, const std::vector<float> &want) {
    double max_err = 0.0, max_ref = 0.0;
    for (size_t i = 0; i < want.size(); ++i) {
        if (std::isnan(got[i])) return INFINITY;
        max_err = std::max(max_err, std::abs(double(got[i]) - double(want[i])));
        max_ref = std::max(max_ref, std::abs(double(want[i])));
    }
    return max_ref > 0.0 ? max_err / max_ref : max_err;
}

class VulkanGemm : public test::VulkanSuite {
protected:
#ifdef MST_HAVE_VULKAN
    void TearDown() override {
        std::string why;
        if (vulkan_) vulkan_->set_gemm(VulkanBackend::GemmKernel::automatic, 16, why);  // the default
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
    // one taking every token), each expert's gate, up and down one GEMM over its tokens.
    void check_routed_experts(VulkanBackend::GemmKernel kernel, double float_bound, double quant_bound) {
        std::string why;
        ASSERT_TRUE(vulkan_->set_gemm(kernel, 2, why)) << why;
        const int64_t hidden = 96, inter = 72, n_tokens = 70;
        std::vector<std::vector<int64_t>> tokens(5);
        for (int64_t t = 0; t < n_tokens; ++t) {
            tokens[size_t(t % 3)].push_back(t);  // experts 0..2: a third each
            tokens[4].push_back(t);              // expert 4: all; expert 3: none
        }
        for (DType t : {DType::Q4, DType::Q8, DType::BF16}) {
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
            const uint64_t before = vulkan_->gemm_dispatches();
            vulkan_->routed_swiglu(h.data(), got.data(), n_tokens, hidden, uses.data(), uses.size());
            EXPECT_EQ(vulkan_->gemm_dispatches(), before + 4 * 3) << "gate, up, down of the 4 used experts";
            EXPECT_LT(normalized_error(got, want), dtype_is_quantized(t) ? quant_bound : float_bound) << dtype_name(t);
        }
    }
#endif
    CpuBackend cpu_{2, cpu_isa_best()};
};

#ifdef MST_HAVE_VULKAN

TEST_F(VulkanGemm, PortableGemmMatchesCpuForEveryType) {
    check_dense_products(VulkanBackend::GemmKernel::portable, kFloatBound, kQuantBound);
}

TEST_F(VulkanGemm, PortableGemmRunsRoutedExpertsGroupedPerExpert) {
    check_routed_experts(VulkanBackend::GemmKernel::portable, kFloatBound, kQuantBound);
}

TEST_F(VulkanGemm, CooperativeMatrixGemmMatchesCpuForEveryType) {
    std::string why;
    if (!vulkan_->set_gemm(VulkanBackend::GemmKernel::coopmat, 1, why))
        GTEST_SKIP() << "no cooperative-matrix GEMM on '" << vulkan_->device_name() << "': " << why
                     << " (it runs on an NVIDIA GPU; lavapipe has none)";
    check_dense_products(VulkanBackend::GemmKernel::coopmat, kCoopBound, kCoopBound);
}

TEST_F(VulkanGemm, CooperativeMatrixGemmRunsRoutedExperts) {
    std::string why;
    if (!vulkan_->set_gemm(VulkanBackend::GemmKernel::coopmat, 1, why))
        GTEST_SKIP() << "no cooperative-matrix GEMM on '" << vulkan_->device_name() << "': " << why;
    check_routed_experts(VulkanBackend::GemmKernel::coopmat, kCoopBound, kCoopBound);
}

// More token uses than one dispatch gathers (65535 rows): 8 experts each taking tokens
// 1..n-1 of 8200 (so none reads h in place), gathered in two dispatches.
TEST_F(VulkanGemm, RoutedExpertsGatherMoreRowsThanOneDispatch) {
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

TEST_F(VulkanGemm, BadEnvironmentValueIsNamed) {
    ::setenv("MST_VULKAN_GEMM", "fast", 1);
    try {
        VulkanBackend b(BackendOptions{}, false);
        ADD_FAILURE() << "a backend was created with MST_VULKAN_GEMM=fast";
    } catch (const Error &e) {
        EXPECT_NE(std::string(e.what()).find("MST_VULKAN_GEMM='fast'"), std::string::npos) << e.what();
    }
    ::unsetenv("MST_VULKAN_GEMM");
}

#endif

}  // namespace
}  // namespace mst
