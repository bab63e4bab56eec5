// GGML's K-quants (core/ggml_kquants.h): sizes and names, the decoder against a second,
// loop-shaped decoder written from GGML's dequantize_row_* (so that one wrong bit
// position in either shows), quantize/dequantize error against the bits per weight, and
// the CPU kernels against dequantize-then-multiply in double precision at odd sizes, for
// every ISA this machine runs.
//
// The kernels' bound against dequantize-then-multiply: quant_matmul_check.h
// (kquant_matmul_error). One wrong scale, code or bit order breaks it by orders of magnitude.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "core/error.h"
#include "core/ggml_kquants.h"
#include "core/quant.h"
#include "expect_error.h"
#include "quant_matmul_check.h"
#include "quant_test_data.h"

namespace mst {
namespace {

constexpr DType kTypes[] = {DType::GGML_Q2_K, DType::GGML_Q3_K, DType::GGML_Q4_K, DType::GGML_Q5_K,
                            DType::GGML_Q6_K};

using test::dequantize;
using test::gaussian;
using test::quantize;

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> v(n);
    for (uint8_t &b : v) b = uint8_t(rng());
    return v;
}

// ---- a second decoder, in the shape of GGML's loops ---------------------------------------

void decode_q2k(const BlockQ2K &b, float *y) {
    const float d = half_to_float(b.d), dmin = half_to_float(b.dmin);
    const uint8_t *q = b.qs;
    int is = 0;
    for (int n = 0; n < 256; n += 128) {
        for (int shift = 0; shift < 8; shift += 2)
            for (int half = 0; half < 2; ++half) {
                const uint8_t sc = b.scales[is++];
                for (int l = 0; l < 16; ++l)
                    *y++ = d * float(sc & 0xF) * float((q[l + 16 * half] >> shift) & 3) - dmin * float(sc >> 4);
            }
        q += 32;
    }
}

void decode_q3k(const BlockQ3K &b, float *y) {
    // The 12 scale bytes as four little-endian words, rearranged into 16 six-bit values.
    uint32_t aux[4];
    std::memcpy(aux, b.scales, 12);
    const uint32_t tmp = aux[2], m4 = 0x0f0f0f0f, m2 = 0x03030303;
    aux[2] = ((aux[0] >> 4) & m4) | (((tmp >> 4) & m2) << 4);
    aux[3] = ((aux[1] >> 4) & m4) | (((tmp >> 6) & m2) << 4);
    aux[0] = (aux[0] & m4) | (((tmp >> 0) & m2) << 4);
    aux[1] = (aux[1] & m4) | (((tmp >> 2) & m2) << 4);
    int8_t scales[16];
    std::memcpy(scales, aux, 16);
    const float d = half_to_float(b.d);
    const uint8_t *q = b.qs;
    uint8_t m = 1;
    int is = 0;
    for (int n = 0; n < 256; n += 128) {
        for (int shift = 0; shift < 8; shift += 2, m = uint8_t(m << 1))
            for (int half = 0; half < 2; ++half) {
                const float dl = d * float(scales[is++] - 32);
                for (int l = 16 * half; l < 16 * half + 16; ++l)
                    *y++ = dl * float(((q[l] >> shift) & 3) - ((b.hmask[l] & m) ? 0 : 4));
            }
        q += 32;
    }
}

void scale_min(int j, const uint8_t *q, int &d, int &m) {
    if (j < 4) {
        d = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

template <typename Block>
void decode_q45k(const Block &b, const uint8_t *qh, float *y) {
    const float d = half_to_float(b.d), dmin = half_to_float(b.dmin);
    const uint8_t *q = b.qs;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2) {
        int sc, m;
        scale_min(is, b.scales, sc, m);
        const float d1 = d * float(sc), m1 = dmin * float(m);
        scale_min(is + 1, b.scales, sc, m);
        const float d2 = d * float(sc), m2 = dmin * float(m);
        for (int l = 0; l < 32; ++l) *y++ = d1 * float((q[l] & 0xF) + (qh && (qh[l] & u1) ? 16 : 0)) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d2 * float((q[l] >> 4) + (qh && (qh[l] & u2) ? 16 : 0)) - m2;
        q += 32;
        u1 = uint8_t(u1 << 2);
        u2 = uint8_t(u2 << 2);
    }
}

void decode_q6k(const BlockQ6K &b, float *y) {
    const float d = half_to_float(b.d);
    const uint8_t *ql = b.ql, *qh = b.qh;
    const int8_t *sc = b.scales;
    for (int n = 0; n < 256; n += 128) {
        for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * float(sc[is]) * float(q1);
            y[l + 32] = d * float(sc[is + 2]) * float(q2);
            y[l + 64] = d * float(sc[is + 4]) * float(q3);
            y[l + 96] = d * float(sc[is + 6]) * float(q4);
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

void decode_reference(DType t, const uint8_t *block, float *y) {
    switch (t) {
        case DType::GGML_Q2_K: return decode_q2k(*reinterpret_cast<const BlockQ2K *>(block), y);
        case DType::GGML_Q3_K: return decode_q3k(*reinterpret_cast<const BlockQ3K *>(block), y);
        case DType::GGML_Q4_K: return decode_q45k(*reinterpret_cast<const BlockQ4K *>(block), nullptr, y);
        case DType::GGML_Q5_K: {
            const auto &b = *reinterpret_cast<const BlockQ5K *>(block);
            return decode_q45k(b, b.qh, y);
        }
        default: return decode_q6k(*reinterpret_cast<const BlockQ6K *>(block), y);
    }
}

// Random bytes with sane super-scales (f16 of modest magnitude, no NaN or infinity).
std::vector<uint8_t> random_blocks(DType t, int n_blocks, uint32_t seed) {
    std::vector<uint8_t> bytes = random_bytes(dtype_size(t) * size_t(n_blocks), seed);
    std::mt19937 rng(seed + 1);
    std::uniform_real_distribution<float> scale(-0.02f, 0.02f);
    for (int b = 0; b < n_blocks; ++b) {
        uint8_t *p = bytes.data() + dtype_size(t) * size_t(b);
        const auto set = [&](size_t offset) {
            const uint16_t h = float_to_half(scale(rng));
            std::memcpy(p + offset, &h, 2);
        };
        switch (t) {
            case DType::GGML_Q2_K: set(offsetof(BlockQ2K, d)); set(offsetof(BlockQ2K, dmin)); break;
            case DType::GGML_Q3_K: set(offsetof(BlockQ3K, d)); break;
            case DType::GGML_Q4_K: set(offsetof(BlockQ4K, d)); set(offsetof(BlockQ4K, dmin)); break;
            case DType::GGML_Q5_K: set(offsetof(BlockQ5K, d)); set(offsetof(BlockQ5K, dmin)); break;
            default: set(offsetof(BlockQ6K, d)); break;
        }
    }
    return bytes;
}

TEST(GgmlKQuants, SizesAndNames) {
    const size_t bytes[] = {84, 110, 144, 176, 210};
    const char *names[] = {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"};
    for (size_t i = 0; i < 5; ++i) {
        const DType t = kTypes[i];
        EXPECT_EQ(dtype_size(t), bytes[i]);
        EXPECT_EQ(dtype_block_elems(t), 256u);
        EXPECT_EQ(dtype_row_bytes(t, 4096), 16 * bytes[i]);
        EXPECT_EQ(dtype_row_bytes(t, 100), bytes[i]) << "a short row is padded to one super-block";
        EXPECT_TRUE(dtype_is_quantized(t));
        EXPECT_TRUE(dtype_is_kquant(t));
        EXPECT_EQ(dtype_name(t), names[i]);
        EXPECT_EQ(dtype_from_name(names[i]), t);
        EXPECT_EQ(dtype_from_safetensors(names[i]), std::nullopt) << "not a safetensors type";
    }
    EXPECT_FALSE(dtype_is_kquant(DType::Q4));
}

TEST(GgmlKQuants, DecoderMatchesGgmlLoopsOnRandomBits) {
    for (DType t : kTypes) {
        const std::vector<uint8_t> blocks = random_blocks(t, 3, 7 + uint32_t(t));
        std::vector<float> got(3 * 256), want(3 * 256);
        dequantize_row(t, blocks.data(), got.data(), 3 * 256);
        for (int b = 0; b < 3; ++b) decode_reference(t, blocks.data() + dtype_size(t) * size_t(b), want.data() + 256 * b);
        for (size_t i = 0; i < got.size(); ++i)
            ASSERT_EQ(got[i], want[i]) << dtype_name(t) << " element " << i << " differs from GGML's decoding";
    }
}

TEST(GgmlKQuants, QuantizeRoundTripsThroughTheDecoder) {
    // Quantize, decode, quantize again: the decoded values are representable, so the second
    // pass must find codes that reproduce them closely (not necessarily the same bytes).
    for (DType t : kTypes) {
        const std::vector<float> x = gaussian(512, 3);
        const std::vector<float> once = dequantize(t, quantize(t, x, 1, 512), 1, 512);
        const std::vector<float> twice = dequantize(t, quantize(t, once, 1, 512), 1, 512);
        double e1 = 0, e2 = 0;
        for (size_t i = 0; i < x.size(); ++i) {
            e1 += (double(x[i]) - once[i]) * (double(x[i]) - once[i]);
            e2 += (double(once[i]) - twice[i]) * (double(once[i]) - twice[i]);
        }
        EXPECT_LT(e2, 0.5 * e1) << dtype_name(t);
    }
}

TEST(GgmlKQuants, ErrorOnGaussianFallsWithTheBits) {
    // RMS error / sigma on Gaussian rows of 4096, printed with the bits per weight. The
    // bounds sit 15% above the measured values (0.2689, 0.1438, 0.0716, 0.0356, 0.0170;
    // docs/packed_format.md), so a quantizer that fits its scales worse fails them.
    const double bounds[] = {0.31, 0.165, 0.082, 0.041, 0.0195};
    const std::vector<float> x = gaussian(8 * 4096, 11);
    double last = INFINITY;
    for (size_t i = 0; i < 5; ++i) {
        const DType t = kTypes[i];
        const std::vector<float> y = dequantize(t, quantize(t, x, 8, 4096), 8, 4096);
        double sum = 0;
        for (size_t k = 0; k < x.size(); ++k) sum += (double(x[k]) - y[k]) * (double(x[k]) - y[k]);
        const double rms = std::sqrt(sum / double(x.size()));
        std::printf("%s  %.4f bits/weight  rms error / sigma %.4f\n", std::string(dtype_name(t)).c_str(),
                    8.0 * double(dtype_size(t)) / 256.0, rms);
        EXPECT_LT(rms, bounds[i]) << dtype_name(t);
        EXPECT_LT(rms, last) << dtype_name(t) << " is no better than the type below it";
        last = rms;
    }
}

TEST(GgmlKQuants, ShortRowsAndSpecialBlocks) {
    for (DType t : kTypes) {
        // A row of 300: one whole super-block and one padded; only 300 values decode.
        const std::vector<float> x = gaussian(300, 5, 0.1f, 0.05f);
        const std::vector<float> y = dequantize(t, quantize(t, x, 1, 300), 1, 300);
        double sum = 0;
        for (size_t i = 0; i < x.size(); ++i) sum += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
        EXPECT_LT(std::sqrt(sum / 300.0), 0.1 * 0.35) << dtype_name(t);
        const std::vector<float> zeros(256, 0.0f);
        EXPECT_EQ(dequantize(t, quantize(t, zeros, 1, 256), 1, 256), zeros) << dtype_name(t);
        // A constant block: every type represents it to within its scale's rounding.
        const std::vector<float> fives(256, -0.5f);
        for (float v : dequantize(t, quantize(t, fives, 1, 256), 1, 256)) EXPECT_NEAR(v, -0.5f, 0.01f) << dtype_name(t);
    }
}

TEST(GgmlKQuants, BadValuesAreRefusedWithTheirReason) {
    for (DType t : kTypes) {
        std::vector<float> x(256, 1.0f);
        std::vector<uint8_t> out(dtype_size(t));
        x[17] = NAN;
        test::expect_error([&] { quantize_row(t, x.data(), 256, out.data()); }, MST_ERR_UNSUPPORTED,
                           {"not finite", "17"});
        x[17] = 1e30f;
        test::expect_error([&] { quantize_row(t, x.data(), 256, out.data()); }, MST_ERR_UNSUPPORTED, {"f16"});
    }
}

// ---- kernels ----------------------------------------------------------------------------

class KQuantKernelTest : public test::QuantKernelTest<test::kquant_matmul_error> {};

TEST_P(KQuantKernelTest, MatchDequantizedReferenceAtOddSizes) {
    double worst = 0.0;
    uint32_t seed = 1;
    for (int64_t rows : {1, 3, 17})
        for (int64_t cols : {256, 512, 768, 100, 300})  // 1..3 super-blocks, and padded rows
            for (int64_t tokens : {1, 3, 17}) {
                const double err = matmul_error(rows, cols, tokens, seed++);
                EXPECT_LE(err, 1.0) << "rows " << rows << " cols " << cols << " tokens " << tokens;
                worst = std::max(worst, err);
            }
    std::printf("worst error / bound: %.3f\n", worst);
}

TEST_P(KQuantKernelTest, LargeMatmulIsThreadedAndCorrect) {
    EXPECT_LE(matmul_error(301, 512, 7, 99), 1.0);
    EXPECT_LE(matmul_error(1029, 256, 1, 98), 1.0);
}

TEST_P(KQuantKernelTest, EmptyAndZeroColumnProducts) {
    const DType t = std::get<1>(GetParam());
    std::vector<float> y(6, 5.0f);
    backend_->matmul(WeightView{t, nullptr, 3, 0}, nullptr, y.data(), 2);
    EXPECT_EQ(y, std::vector<float>(6, 0.0f));
    backend_->matmul(WeightView{t, nullptr, 0, 256}, nullptr, y.data(), 2);
    test::expect_error([&] { backend_->matmul(WeightView{t, nullptr, 2, 256}, y.data(), y.data(), 1); },
                       MST_ERR_INVALID_ARGUMENT, {"null"});
}

// The SIMD kernels compute the scalar kernel's integer sums and combine them with the same
// out-of-line function in the same order, so their outputs are the scalar ones bit for bit.
// Blocks of random bytes (finite super-scales) reach every bit of every code and scale,
// which quantized Gaussian rows do not (negative Q6_K scales, Q3_K / Q4_K high scale bits);
// rows of 1 to 3 super-blocks and one ending inside its last, token counts up to two tiles.
TEST(KQuantSimdKernels, MatchTheScalarKernelBitForBitOnRandomBlocks) {
    CpuBackend scalar(1, CpuIsa::Scalar);
    // Where each type keeps its f16 super-scales (d, and dmin where it has one).
    const auto scale_offsets = [](DType t) -> std::vector<size_t> {
        switch (t) {
            case DType::GGML_Q2_K: return {80, 82};
            case DType::GGML_Q3_K: return {108};
            case DType::GGML_Q6_K: return {208};
            default: return {0, 2};
        }
    };
    for (CpuIsa isa : {CpuIsa::Avx2, CpuIsa::Avx512}) {
        if (!cpu_isa_supported(isa)) continue;
        CpuBackend simd(1, isa);
        uint32_t seed = 40;
        for (DType t : kTypes)
            for (int64_t cols : {256, 768, 300})
                for (int64_t tokens : {1, 3, 17, 33}) {
                    const int64_t rows = 5;
                    const uint64_t row_bytes = dtype_row_bytes(t, cols);
                    std::vector<uint8_t> w = random_bytes(size_t(row_bytes) * rows, seed++);
                    for (size_t b = 0; b < w.size() / dtype_size(t); ++b)
                        for (size_t off : scale_offsets(t)) {
                            const uint16_t h = float_to_half(0.001f * float(1 + (b + off) % 7));
                            std::memcpy(w.data() + b * dtype_size(t) + off, &h, 2);
                        }
                    const std::vector<float> x = gaussian(size_t(tokens * cols), seed++);
                    std::vector<float> want(size_t(rows * tokens)), got(want.size(), NAN);
                    const WeightView view{t, w.data(), rows, cols};
                    scalar.matmul(view, x.data(), want.data(), tokens);
                    simd.matmul(view, x.data(), got.data(), tokens);
                    ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
                        << cpu_isa_name(isa) << " " << dtype_name(t) << " cols " << cols << " tokens " << tokens
                        << ": first output " << got[0] << " vs scalar " << want[0];
                }
    }
}

INSTANTIATE_TEST_SUITE_P(Isa, KQuantKernelTest,
                         ::testing::Combine(::testing::Values(CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512),
                                            ::testing::ValuesIn(kTypes), ::testing::Values(1, 2)),
                         test::kernel_param_name);

}  // namespace
}  // namespace mst
