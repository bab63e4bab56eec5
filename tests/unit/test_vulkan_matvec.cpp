// Op conformance of one token's dense products through shaders/matvec.comp
// (backends/vulkan/op_matvec.cpp) against the CPU backend: every weight type it takes, at
// rows no workgroup divides and rows shorter than, equal to and past one unrolled step of
// a lane (4 units x the subgroup), with and without subgroup operations; shapes it does
// not take keep matmul.comp; MST_VULKAN_MATVEC switches it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "cpu_op_fixture.h"
#include "scoped_env.h"
#include "test_weight.h"
#include "vulkan_suite.h"

namespace mst {
namespace {

using test::random_floats;
using test::TestWeight;

// Float weights: float32 sums in different orders. Q8/Q4: the CPU rounds activations to
// 16-bit integers per block, the GPU does not (the bounds of test_vulkan_ops).
constexpr double kFloatBound = 2e-5;
constexpr double kQuantBound = 3e-4;

const DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8, DType::Q4};

struct Shape {
    int64_t rows, cols;
};
// Columns: one unit-step, a partial and a whole unrolled step (128 units of 4 or 8 columns
// at 32 lanes) and past it; rows: 1, odd, past one workgroup of rows.
const Shape kShapes[] = {{1, 32}, {7, 96}, {67, 544}, {130, 1024}, {5, 1056}, {33, 4128}, {300, 2048}};

double error_against_cpu(Backend &gpu, CpuBackend &cpu, DType t, const Shape &s, uint32_t seed) {
    const TestWeight w(t, s.rows, s.cols, seed);
    const std::vector<float> x = random_floats(size_t(s.cols), seed + 1);
    std::vector<float> want(size_t(s.rows)), got(want.size(), NAN);
    cpu.matmul(w.view, x.data(), want.data(), 1);
    gpu.matmul(w.view, x.data(), got.data(), 1);
    std::vector<double> ref(want.size());
    for (size_t i = 0; i < want.size(); ++i) ref[i] = want[i];
    return test::normalized_error(got, ref);
}

class VulkanMatvec : public test::VulkanSuite {
protected:
    void TearDown() override {
        if (vulkan_) vulkan_->set_matvec(true);  // the default
    }
    CpuBackend cpu_{2, cpu_isa_best()};
};

TEST_F(VulkanMatvec, OneTokenMatchesCpuForEveryType) {
    for (const DType t : kTypes)
        for (size_t i = 0; i < std::size(kShapes); ++i) {
            const Shape &s = kShapes[i];
            const uint64_t before = vulkan_->matvec_dispatches();
            const double err = error_against_cpu(*vulkan_, cpu_, t, s, uint32_t(40 + i));
            EXPECT_LT(err, dtype_is_quantized(t) ? kQuantBound : kFloatBound)
                << dtype_name(t) << " " << s.rows << "x" << s.cols;
            EXPECT_EQ(vulkan_->matvec_dispatches(), before + 1) << dtype_name(t) << " " << s.rows << "x" << s.cols;
        }
}

// Rows that are not whole 16-byte units, batches of tokens and other weight types keep
// matmul.comp, and stay right.
TEST_F(VulkanMatvec, OtherShapesKeepMatmul) {
    const uint64_t before = vulkan_->matvec_dispatches();
    const struct {
        DType t;
        Shape s;
    } cases[] = {{DType::F32, {9, 35}}, {DType::BF16, {9, 36}}, {DType::Q8, {9, 48}}, {DType::Q4, {9, 80}},
                 {DType::MXFP4, {9, 64}}};
    for (const auto &c : cases) {
        const double err = error_against_cpu(*vulkan_, cpu_, c.t, c.s, 7);
        EXPECT_LT(err, dtype_is_quantized(c.t) ? kQuantBound : kFloatBound) << dtype_name(c.t);
    }
    const TestWeight w(DType::BF16, 20, 64, 3);
    const std::vector<float> x = random_floats(2 * 64, 4);
    std::vector<float> y(2 * 20);
    vulkan_->matmul(w.view, x.data(), y.data(), 2);
    EXPECT_EQ(vulkan_->matvec_dispatches(), before);
}

TEST_F(VulkanMatvec, OffKeepsMatmul) {
    vulkan_->set_matvec(false);
    const uint64_t before = vulkan_->matvec_dispatches();
    EXPECT_LT(error_against_cpu(*vulkan_, cpu_, DType::BF16, {67, 544}, 5), kFloatBound);
    EXPECT_EQ(vulkan_->matvec_dispatches(), before);
}

// The partial sums through shared memory (matvec_*, where the suite's device takes matvec_*_sg).
TEST_F(VulkanMatvec, WithoutSubgroupsMatchesCpu) {
    const test::ScopedEnv no_subgroup("MST_VULKAN_NO_SUBGROUP", "1");
    VulkanBackend plain(BackendOptions{}, false);
    for (const DType t : kTypes)
        for (size_t i = 0; i < std::size(kShapes); ++i)
            EXPECT_LT(error_against_cpu(plain, cpu_, t, kShapes[i], uint32_t(60 + i)),
                      dtype_is_quantized(t) ? kQuantBound : kFloatBound)
                << dtype_name(t) << " " << kShapes[i].rows << "x" << kShapes[i].cols;
    EXPECT_EQ(plain.matvec_dispatches(), std::size(kTypes) * std::size(kShapes));
}

// MST_VULKAN_MATVEC=0 keeps matmul.comp (to compare the two on a GPU); another value is an
// error naming the variable (test_vulkan_env_switch).
TEST_F(VulkanMatvec, ByEnvironment) {
    ::setenv("MST_VULKAN_MATVEC", "0", 1);
    {
        VulkanBackend off(BackendOptions{}, false);
        EXPECT_LT(error_against_cpu(off, cpu_, DType::Q8, {67, 544}, 9), kQuantBound);
        EXPECT_EQ(off.matvec_dispatches(), 0u);
    }
    ::unsetenv("MST_VULKAN_MATVEC");
}

}  // namespace
}  // namespace mst
