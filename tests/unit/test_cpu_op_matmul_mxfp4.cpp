// Backend::matmul on MXFP4 weights (the CPU kernel computes on the packed blocks) against
// a naive reference that dequantises the matrix from the format's definition (e2m1 bit
// fields, e8m0 scale) and multiplies in double. Every ISA this machine runs, 1 and 2
// threads. Bound: max |y - ref| / max |ref| < 1e-5 (float32 accumulation over up to
// 2880 products); one wrong nibble, scale or block order gives >= 1e-3.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
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

// e2m1: bit 3 sign, bits 2..1 exponent (bias 1), bit 0 mantissa; exponent 0 is subnormal.
double e2m1_value(uint8_t nibble) {
    const int sign = (nibble >> 3) & 1, exponent = (nibble >> 1) & 3, mantissa = nibble & 1;
    const double magnitude = exponent == 0 ? 0.5 * mantissa : (1.0 + 0.5 * mantissa) * std::ldexp(1.0, exponent - 1);
    return sign ? -magnitude : magnitude;
}

struct Mxfp4Matrix {
    int64_t rows, cols;
    std::vector<uint8_t> blocks, scales;  // [rows][cols / 2], [rows][cols / 32]

    // Element (r, c), dequantised from the definition: element 2j of a block in the low
    // nibble of byte j.
    double value(int64_t r, int64_t c) const {
        const uint8_t byte = blocks[size_t(r * cols / 2 + c / 2)];
        const uint8_t nibble = c % 2 == 0 ? byte & 0x0f : byte >> 4;
        return e2m1_value(nibble) * std::ldexp(1.0, int(scales[size_t(r * cols / 32 + c / 32)]) - 127);
    }
    WeightView view() const {
        WeightView w{DType::MXFP4, blocks.data(), rows, cols};
        w.scales = scales.data();
        return w;
    }
};

// Random blocks (every byte value) and scales in [scale_lo, scale_hi].
Mxfp4Matrix random_mxfp4(int64_t rows, int64_t cols, uint32_t seed, int scale_lo = 118, int scale_hi = 130) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> byte(0, 255), scale(scale_lo, scale_hi);
    Mxfp4Matrix m{rows, cols, std::vector<uint8_t>(size_t(rows * cols / 2)),
                  std::vector<uint8_t>(size_t(rows * cols / 32))};
    for (uint8_t &b : m.blocks) b = uint8_t(byte(rng));
    for (uint8_t &s : m.scales) s = uint8_t(scale(rng));
    return m;
}

std::vector<double> reference(const Mxfp4Matrix &w, const std::vector<float> &x, int64_t n_tokens) {
    std::vector<double> dense(size_t(w.rows * w.cols));
    for (int64_t r = 0; r < w.rows; ++r)
        for (int64_t c = 0; c < w.cols; ++c) dense[size_t(r * w.cols + c)] = w.value(r, c);
    std::vector<double> y(size_t(n_tokens * w.rows), 0.0);
    for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t r = 0; r < w.rows; ++r) {
            double sum = 0.0;
            for (int64_t c = 0; c < w.cols; ++c)
                sum += dense[size_t(r * w.cols + c)] * double(x[size_t(t * w.cols + c)]);
            y[size_t(t * w.rows + r)] = sum;
        }
    return y;
}

class CpuOpMatmulMxfp4 : public test::CpuOpTest {
protected:
    void check(const Mxfp4Matrix &w, int64_t n_tokens, uint32_t seed) {
        SCOPED_TRACE(::testing::Message() << "rows " << w.rows << " cols " << w.cols << " n_tokens " << n_tokens);
        const std::vector<float> x = random_floats(size_t(n_tokens * w.cols), seed);
        const size_t n_out = size_t(n_tokens * w.rows);
        const std::vector<float> y =
            test::run_guarded(n_out, [&](float *out) { backend_->matmul(w.view(), x.data(), out, n_tokens); });
        EXPECT_LT(normalized_error(y, reference(w, x, n_tokens)), kBound);
    }
};

TEST_P(CpuOpMatmulMxfp4, MatchesDequantisedReference) {
    uint32_t seed = 1;
    for (int64_t rows : {1, 3, 65, 130})
        for (int64_t cols : {32, 64, 96, 320})
            for (int64_t n_tokens : {1, 2, 3, 4, 5, 9}) {
                check(random_mxfp4(rows, cols, seed), n_tokens, seed + 1000);
                ++seed;
            }
}

TEST_P(CpuOpMatmulMxfp4, GptOssSizedRows) {
    // A gpt-oss row is 2880 wide (90 blocks); a decode step and a small prefill.
    const Mxfp4Matrix w = random_mxfp4(96, 2880, 5);
    check(w, 1, 6);
    check(w, 7, 7);
}

TEST_P(CpuOpMatmulMxfp4, EveryNibbleAndExtremeScales) {
    // One row per scale byte among the extremes (subnormal 2^-127, 2^-126, 1, and 2^125,
    // the largest at which 6 x 2^(e - 127) is a finite float32);
    // every row holds each of the 16 nibbles twice in its block. x picks one column at a
    // time, so y is that single element exactly.
    const std::vector<uint8_t> scale_bytes = {0, 1, 127, 252};
    const int64_t rows = int64_t(scale_bytes.size()), cols = 32;
    Mxfp4Matrix w{rows, cols, std::vector<uint8_t>(size_t(rows * 16)), scale_bytes};
    for (int64_t r = 0; r < rows; ++r)
        for (int j = 0; j < 16; ++j) w.blocks[size_t(r * 16 + j)] = uint8_t(j | ((15 - j) << 4));
    std::vector<float> x(static_cast<size_t>(cols)), y(static_cast<size_t>(rows));
    for (int64_t c = 0; c < cols; ++c) {
        std::fill(x.begin(), x.end(), 0.0f);
        x[size_t(c)] = 1.0f;
        backend_->matmul(w.view(), x.data(), y.data(), 1);
        for (int64_t r = 0; r < rows; ++r)
            EXPECT_EQ(double(y[size_t(r)]), w.value(r, c)) << "row " << r << " col " << c;
    }
}

TEST_P(CpuOpMatmulMxfp4, RejectsBadArguments) {
    const Mxfp4Matrix w = random_mxfp4(2, 64, 3);
    const std::vector<float> x(64, 1.0f);
    std::vector<float> y(2);
    WeightView ragged = w.view();
    ragged.cols = 48;
    test::expect_error([&] { backend_->matmul(ragged, x.data(), y.data(), 1); }, MST_ERR_INVALID_ARGUMENT,
                       {"48", "multiple of 32"});
    WeightView no_scales = w.view();
    no_scales.scales = nullptr;
    test::expect_error([&] { backend_->matmul(no_scales, x.data(), y.data(), 1); }, MST_ERR_INVALID_ARGUMENT,
                       {"null"});
    test::expect_error([&] { backend_->matmul(w.view(), x.data(), y.data(), -2); }, MST_ERR_INVALID_ARGUMENT,
                       {"negative"});
}

MST_INSTANTIATE_CPU_OP(CpuOpMatmulMxfp4);

}  // namespace
}  // namespace mst
