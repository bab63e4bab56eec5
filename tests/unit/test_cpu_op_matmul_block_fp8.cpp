// FP8 E4M3 decoding against the format's definition, and Backend::matmul_block_fp8
// against a double-precision product with the dequantised weights, for block grids
// that divide the matrix and ones that leave partial blocks, square and not.
// Bound: 1e-5 of max |ref| (float32 dot products of up to 1000 terms; the dequantised
// weight itself is exact in float32), while one wrong scale block or code is >= 1e-3.
#include <gtest/gtest.h>

#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "cpu_op_fixture.h"
#include "expect_error.h"
#include "fp8_e4m3.h"

namespace mst {
namespace {

using test::CpuOpTest;
using test::random_floats;

constexpr double kBound = 1e-5;

TEST(Fp8E4m3, DecodesEveryCodeAsDefined) {
    for (int b = 0; b < 256; ++b) {
        SCOPED_TRACE(b);
        const double want = test::e4m3_value(uint8_t(b));
        const float got = fp8_e4m3_to_f32(uint8_t(b));
        if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(got));
        } else {
            EXPECT_EQ(double(got), want);
        }
    }
    EXPECT_EQ(fp8_e4m3_to_f32(0x38), 1.0f);
    EXPECT_EQ(fp8_e4m3_to_f32(0xb8), -1.0f);
    EXPECT_EQ(fp8_e4m3_to_f32(0x7e), 448.0f);
    EXPECT_EQ(fp8_e4m3_to_f32(0x01), 0.001953125f);  // smallest subnormal, 2^-9
    EXPECT_EQ(fp8_e4m3_to_f32(0x08), 0.015625f);     // smallest normal, 2^-6
    EXPECT_TRUE(std::isnan(fp8_e4m3_to_f32(0xff)));
    EXPECT_EQ(dtype_size(DType::F8_E4M3), 1u);
    EXPECT_EQ(dtype_from_safetensors("F8_E4M3"), DType::F8_E4M3);
    EXPECT_EQ(dtype_name(DType::F8_E4M3), "F8_E4M3");
}

TEST(Fp8E4m3, ConvertToF32Decodes) {
    const uint8_t codes[4] = {0x38, 0xc0, 0x00, 0x7e};
    float out[4];
    convert_to_f32(DType::F8_E4M3, codes, out, 4);
    EXPECT_EQ(out[0], 1.0f);
    EXPECT_EQ(out[1], -2.0f);
    EXPECT_EQ(out[2], 0.0f);
    EXPECT_EQ(out[3], 448.0f);
}

// Random codes (every finite one) with random per-block scales.
struct Fp8Weight {
    int64_t rows, cols, br, bc, srows, scols;
    std::vector<uint8_t> codes;
    std::vector<float> scales;
    std::vector<unsigned char> scale_bytes;  // scales at an odd address, as in a streamed expert
    Fp8Weight(int64_t r, int64_t c, int64_t block_rows, int64_t block_cols, uint32_t seed)
        : rows(r), cols(c), br(block_rows), bc(block_cols), srows((r + br - 1) / br), scols((c + bc - 1) / bc) {
        std::mt19937 rng(seed);
        codes.resize(size_t(r * c));
        for (uint8_t &b : codes) {
            b = uint8_t(rng());
            if ((b & 0x7f) == 0x7f) b = uint8_t(b & 0xfe);  // no NaN
        }
        for (float e : random_floats(size_t(srows * scols), seed + 1, -12.0f, 2.0f)) scales.push_back(std::exp2(e));
        scale_bytes.resize(scales.size() * sizeof(float) + 1);
        std::memcpy(scale_bytes.data() + 1, scales.data(), scales.size() * sizeof(float));
    }
    WeightView view() const { return {DType::F8_E4M3, codes.data(), rows, cols}; }
    WeightView scale_view() const { return {DType::F32, scale_bytes.data() + 1, srows, scols}; }
    double value(int64_t r, int64_t c) const {
        return test::e4m3_value(codes[size_t(r * cols + c)]) * double(scales[size_t((r / br) * scols + c / bc)]);
    }
};

std::vector<double> reference(const Fp8Weight &w, const std::vector<float> &x, int64_t n_tokens) {
    std::vector<double> y(size_t(n_tokens * w.rows), 0.0);
    for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t r = 0; r < w.rows; ++r)
            for (int64_t c = 0; c < w.cols; ++c)
                y[size_t(t * w.rows + r)] += w.value(r, c) * double(x[size_t(t * w.cols + c)]);
    return y;
}

using CpuOpMatmulBlockFp8 = CpuOpTest;

TEST_P(CpuOpMatmulBlockFp8, MatchesDequantizedReference) {
    struct Shape {
        int64_t rows, cols, br, bc;
    };
    for (const Shape s : {Shape{300, 200, 128, 128}, Shape{45, 70, 16, 32}, Shape{8, 1000, 128, 128},
                          Shape{1, 1, 128, 128}, Shape{130, 257, 64, 128}, Shape{64, 96, 32, 16}})
        for (int64_t n_tokens : {1, 2, 5, 11}) {
            SCOPED_TRACE(::testing::Message()
                         << s.rows << "x" << s.cols << " blocks " << s.br << "x" << s.bc << " tokens " << n_tokens);
            const Fp8Weight w(s.rows, s.cols, s.br, s.bc, uint32_t(s.rows + 3 * s.cols));
            const std::vector<float> x = random_floats(size_t(n_tokens * s.cols), uint32_t(s.cols + n_tokens));
            const std::vector<float> y = test::run_guarded(size_t(n_tokens * s.rows), [&](float *out) {
                backend_->matmul_block_fp8(w.view(), w.scale_view(), int32_t(s.br), int32_t(s.bc), x.data(), out,
                                           n_tokens);
            });
            EXPECT_LT(test::normalized_error(y, reference(w, x, n_tokens)), kBound);
        }
}

TEST_P(CpuOpMatmulBlockFp8, NanCodeReachesOnlyItsRow) {
    Fp8Weight w(6, 40, 4, 8, 9);
    w.codes[size_t(3 * 40 + 17)] = 0xff;
    const std::vector<float> x = random_floats(40, 10);
    std::vector<float> y(6);
    backend_->matmul_block_fp8(w.view(), w.scale_view(), 4, 8, x.data(), y.data(), 1);
    for (int64_t r = 0; r < 6; ++r) EXPECT_EQ(std::isnan(y[size_t(r)]), r == 3) << r;
}

TEST_P(CpuOpMatmulBlockFp8, RejectsBadArguments) {
    const Fp8Weight w(10, 20, 8, 8, 1);
    std::vector<float> x(20), y(10);
    test::expect_error([&] { backend_->matmul_block_fp8(w.view(), w.scale_view(), 4, 8, x.data(), y.data(), 1); },
                       MST_ERR_INVALID_ARGUMENT, {"2x3 scales", "expected 3x3"});
    test::expect_error([&] { backend_->matmul_block_fp8(w.view(), w.scale_view(), 0, 8, x.data(), y.data(), 1); },
                       MST_ERR_INVALID_ARGUMENT, {"block 0x8"});
    const WeightView bf16{DType::BF16, w.codes.data(), 10, 10};
    test::expect_error([&] { backend_->matmul_block_fp8(bf16, w.scale_view(), 8, 8, x.data(), y.data(), 1); },
                       MST_ERR_UNSUPPORTED, {"F8_E4M3", "BF16"});
    test::expect_error([&] { backend_->matmul_block_fp8(w.view(), w.scale_view(), 8, 8, nullptr, y.data(), 1); },
                       MST_ERR_INVALID_ARGUMENT, {"null pointer"});
}

MST_INSTANTIATE_CPU_OP(CpuOpMatmulBlockFp8);

}  // namespace
}  // namespace mst
