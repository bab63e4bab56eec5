// Backend::matmul_xw (y = x W, W stored [in][out]) on the CPU backend against a naive
// double-precision reference, for every ISA this machine runs, at 1 and 2 threads.
// Bound: max |y - ref| / max |ref| < 1e-5, float32 accumulation over up to 1000
// products of values in [-1, 1]; one wrong element or index gives >= 1e-3.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "core/error.h"
#include "cpu_op_fixture.h"
#include "expect_error.h"

namespace mst {
namespace {

constexpr double kBound = 1e-5;

using test::normalized_error;
using test::random_floats;

using Matrix = test::OpWeight;

std::vector<double> reference(const Matrix &w, const std::vector<float> &x, int64_t n_tokens) {
    std::vector<double> y(size_t(n_tokens * w.cols), 0.0);
    for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t r = 0; r < w.rows; ++r)
            for (int64_t c = 0; c < w.cols; ++c)
                y[size_t(t * w.cols + c)] += double(x[size_t(t * w.rows + r)]) * w.value[size_t(r * w.cols + c)];
    return y;
}

class CpuOpMatmulXw : public test::CpuOpTest {
protected:
    // One product, with sentinels after y to catch a write past the output.
    void check(DType dtype, int64_t rows, int64_t cols, int64_t n_tokens, uint32_t seed) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " rows " << rows << " cols " << cols << " n_tokens "
                                          << n_tokens);
        const Matrix w(dtype, rows, cols, seed);
        const std::vector<float> x = random_floats(size_t(n_tokens * rows), seed + 7);
        const size_t n_out = size_t(n_tokens * cols);
        const std::vector<float> y =
            test::run_guarded(n_out, [&](float *out) { backend_->matmul_xw(w.view(), x.data(), out, n_tokens); });
        EXPECT_LT(normalized_error(y, reference(w, x, n_tokens)), kBound);
    }
};

TEST_P(CpuOpMatmulXw, AllDtypesOddSizes) {
    uint32_t seed = 1;
    for (DType dtype : {DType::F32, DType::F16, DType::BF16})
        for (int64_t rows : {1, 3, 4, 5, 33})
            for (int64_t cols : {1, 7, 16, 31, 300})
                for (int64_t n_tokens : {1, 2, 3, 4, 5, 9}) check(dtype, rows, cols, n_tokens, seed++);
}

TEST_P(CpuOpMatmulXw, ShapesAcrossBlocks) {
    // Rows past one row block (64), columns past one strip (2048), a prefill-sized batch,
    // and decode steps large enough to run in parallel (with strips narrowed to share
    // them out).
    check(DType::BF16, 150, 2100, 11, 100);
    check(DType::F16, 257, 1000, 1, 101);
    check(DType::F32, 1000, 70, 6, 102);
    check(DType::BF16, 70, 4200, 1, 103);
}

TEST_P(CpuOpMatmulXw, MatchesMatmulOnTheTranspose) {
    // x W with W [in][out] is matmul with W^T [out][in]: the two ops must agree.
    const int64_t in = 96, out = 80, n = 5;
    const Matrix w(DType::BF16, in, out, 7);
    std::vector<uint16_t> wt(size_t(in * out));
    for (int64_t r = 0; r < in; ++r)
        for (int64_t c = 0; c < out; ++c) wt[size_t(c * in + r)] = w.half[size_t(r * out + c)];
    const std::vector<float> x = random_floats(size_t(n * in), 8);
    std::vector<float> y_xw(size_t(n * out)), y_mm(size_t(n * out));
    backend_->matmul_xw(w.view(), x.data(), y_xw.data(), n);
    backend_->matmul(WeightView{DType::BF16, wt.data(), out, in}, x.data(), y_mm.data(), n);
    std::vector<double> ref(y_mm.begin(), y_mm.end());
    EXPECT_LT(normalized_error(y_xw, ref), kBound);
}

TEST_P(CpuOpMatmulXw, F16SpecialValues) {
    // Subnormals, the largest finite value, zeros of both signs, one, infinities: the
    // branch-free decode must give each exactly (a 1 x 1 product with x = 1).
    const std::vector<uint16_t> bits = {0x0001, 0x03ff, 0x0400, 0x7bff, 0x0000, 0x8000, 0xfbff, 0x3c00, 0x7c00, 0xfc00};
    const float one = 1.0f;
    for (uint16_t b : bits) {
        float y = 0.0f;
        backend_->matmul_xw(WeightView{DType::F16, &b, 1, 1}, &one, &y, 1);
        EXPECT_EQ(y, f16_to_f32(b)) << "bits " << b;
    }
    const uint16_t nan = 0x7e00;
    float y = 0.0f;
    backend_->matmul_xw(WeightView{DType::F16, &nan, 1, 1}, &one, &y, 1);
    EXPECT_TRUE(std::isnan(y));
}

TEST_P(CpuOpMatmulXw, ZeroRowsGiveZeros) {
    std::vector<float> y(6, 5.0f);
    const float dummy = 0.0f;
    backend_->matmul_xw(WeightView{DType::F32, &dummy, 0, 3}, nullptr, y.data(), 2);
    for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST_P(CpuOpMatmulXw, RejectsBadArguments) {
    const std::vector<float> w(12, 1.0f), x(4, 1.0f);
    std::vector<float> y(3);
    const std::vector<uint8_t> bytes(12);
    auto run = [&](const WeightView &view, const float *in, int64_t n) { backend_->matmul_xw(view, in, y.data(), n); };
    test::expect_error([&] { run(WeightView{DType::I8, bytes.data(), 4, 3}, x.data(), 1); }, MST_ERR_UNSUPPORTED,
                       {"I8"});
    test::expect_error([&] { run(WeightView{DType::MXFP4, bytes.data(), 4, 3}, x.data(), 1); }, MST_ERR_UNSUPPORTED,
                       {"MXFP4"});
    test::expect_error([&] { run(WeightView{DType::F32, w.data(), 4, 3}, x.data(), -1); }, MST_ERR_INVALID_ARGUMENT,
                       {"negative"});
    test::expect_error([&] { run(WeightView{DType::F32, w.data(), 4, 3}, nullptr, 1); }, MST_ERR_INVALID_ARGUMENT,
                       {"null"});
}

MST_INSTANTIATE_CPU_OP(CpuOpMatmulXw);

}  // namespace
}  // namespace mst
