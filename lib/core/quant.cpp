#include "core/quant.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/ggml_kquants.h"
#include "core/ggml_legacy_quants.h"

namespace mst {
namespace {

constexpr float kMaxHalf = 65504.0f;

}  // namespace

uint16_t float_to_half(float f) {
    uint32_t x;
    std::memcpy(&x, &f, sizeof x);
    const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) return sign | (x > 0x7f800000u ? 0x7e00 : 0x7c00);  // NaN, infinity
    if (x >= 0x477ff000u) return sign | 0x7c00;                                // rounds past 65504
    if (x < 0x38800000u) {
        // Below 2^-14: a subnormal f16, units of 2^-24. Adding 2^23 rounds the scaled
        // value to an integer, to nearest even, in the float addition itself.
        float a;
        std::memcpy(&a, &x, sizeof a);
        const float t = a * 16777216.0f + 8388608.0f;
        uint32_t tb;
        std::memcpy(&tb, &t, sizeof tb);
        return sign | uint16_t(tb - 0x4b000000u);
    }
    uint32_t h = ((x >> 23) - 112u) << 10 | ((x >> 13) & 0x3ffu);
    const uint32_t rest = x & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry moves into the exponent, as it should
    return sign | uint16_t(h);
}

namespace {

uint16_t to_half(float f) { return float_to_half(f); }

// f32 -> f16 -> f32: the value a stored scale or minimum really has.
float round_to_half(float v) { return half_to_float(to_half(v)); }

void check_finite(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(x[i]))
            fail(MST_ERR_UNSUPPORTED, "cannot quantize a value that is not finite ({} at element {})", x[i], i);
}

void quantize_block_q8(const float *x, int64_t n, BlockQ8 &b) {
    float amax = 0.0f;
    for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
    if (amax / 127.0f > kMaxHalf) fail(MST_ERR_UNSUPPORTED, "a block's largest magnitude {} is too large for an f16 scale", amax);
    b.d = to_half(amax / 127.0f);
    const float d = half_to_float(b.d);
    const float inv = d > 0.0f ? 1.0f / d : 0.0f;
    for (int64_t i = 0; i < kQuantBlock; ++i) {
        // The f16 rounding of d may put the extreme a hair past 127. Rounding half away
        // from zero by truncation: no libm call in the converter's inner loop.
        const float v = i < n ? std::clamp(x[i] * inv, -127.0f, 127.0f) : 0.0f;
        b.q[i] = int8_t(v < 0.0f ? v - 0.5f : v + 0.5f);
    }
}

// Codes for x given a stored scale and minimum, and the squared error they leave.
float assign_q4(const float *x, int64_t n, float d, float m, uint8_t *q) {
    const float inv = d > 0.0f ? 1.0f / d : 0.0f;
    float err = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
        q[i] = uint8_t(std::clamp((x[i] - m) * inv, 0.0f, 15.0f) + 0.5f);  // round half up
        const float e = x[i] - (d * float(q[i]) + m);
        err += e * e;
    }
    return err;
}

void pack_q4(const uint8_t *q, int64_t n, float d, float m, BlockQ4 &b) {
    b.d = to_half(d);
    b.m = to_half(m);
    uint8_t codes[kQuantBlock] = {};
    std::copy_n(q, n, codes);
    for (int j = 0; j < 16; ++j) b.q[j] = uint8_t(codes[j] | (codes[j + 16] << 4));
}

void check_q4_range(float lo, float hi) {
    if (std::fabs(lo) > kMaxHalf || std::fabs(hi) > kMaxHalf)
        fail(MST_ERR_UNSUPPORTED, "a block's range [{}, {}] is too large for an f16 minimum", lo, hi);
}

void quantize_block_q4_minmax(const float *x, int64_t n, BlockQ4 &b) {
    const auto [lo_it, hi_it] = std::minmax_element(x, x + n);
    const float lo = *lo_it, hi = *hi_it;
    check_q4_range(lo, hi);
    const float d = round_to_half((hi - lo) / 15.0f), m = round_to_half(lo);
    uint8_t q[kQuantBlock];
    assign_q4(x, n, d, m, q);
    pack_q4(q, n, d, m, b);
}

// Least-squares Q4: for fixed codes q the best (d, m) solve a 2x2 linear regression of x
// on q; for fixed (d, m) the best codes round (x - m) / d. Alternating the two from the
// block's [min, max] and keeping the best after f16 rounding never does worse than plain
// min/max rounding, which is the first candidate. Measured on Gaussian blocks (RMS error
// / sigma, time relative to min/max): min/max 0.0782 (1x); this, 4 rounds 0.0725 (2x);
// adding starts from ranges pulled in by 4-16% 0.0710 (11x), too slow for the converter.
void quantize_block_q4_fitted(const float *x, int64_t n, BlockQ4 &b) {
    constexpr int kRounds = 4;
    const auto [lo_it, hi_it] = std::minmax_element(x, x + n);
    const float lo = *lo_it, hi = *hi_it;
    check_q4_range(lo, hi);
    uint8_t q[kQuantBlock], best_q[kQuantBlock] = {};
    float best_d = 0.0f, best_m = round_to_half(lo);
    float best_err = assign_q4(x, n, best_d, best_m, best_q);  // a constant block: exact
    double sx = 0;
    for (int64_t i = 0; i < n; ++i) sx += x[i];
    float d = (hi - lo) / 15.0f, m = lo, last_d = -1.0f, last_m = 0.0f;
    for (int round = 0; hi > lo && round <= kRounds; ++round) {
        const float dr = round_to_half(d), mr = round_to_half(m);
        if (dr == last_d && mr == last_m) break;  // converged: the same codes again
        last_d = dr;
        last_m = mr;
        const float err = assign_q4(x, n, dr, mr, q);
        if (err < best_err) {
            best_err = err;
            best_d = dr;
            best_m = mr;
            std::copy_n(q, n, best_q);
        }
        double sq = 0, sqq = 0, sqx = 0;
        for (int64_t i = 0; i < n; ++i) {
            sq += q[i];
            sqq += double(q[i]) * q[i];
            sqx += double(q[i]) * x[i];
        }
        const double det = double(n) * sqq - sq * sq;
        if (det <= 0.0) break;  // every code equal: the fit is underdetermined
        const double nd = (double(n) * sqx - sq * sx) / det;
        if (!(nd > 0.0)) break;
        d = float(nd);
        m = float((sx - nd * sq) / double(n));
        if (std::fabs(m) > kMaxHalf || d > kMaxHalf) break;
    }
    pack_q4(best_q, n, best_d, best_m, b);
}

template <typename Block, void (*QuantizeBlock)(const float *, int64_t, Block &)>
void quantize_blocks(const float *src, int64_t n, Block *dst) {
    check_finite(src, n);
    for (int64_t i = 0; i < n; i += kQuantBlock) QuantizeBlock(src + i, std::min(kQuantBlock, n - i), dst[i / kQuantBlock]);
}

}  // namespace

void quantize_row_q8(const float *src, int64_t n, BlockQ8 *dst) { quantize_blocks<BlockQ8, quantize_block_q8>(src, n, dst); }

void quantize_row_q4(const float *src, int64_t n, BlockQ4 *dst) {
    quantize_blocks<BlockQ4, quantize_block_q4_fitted>(src, n, dst);
}

void quantize_row_q4_minmax(const float *src, int64_t n, BlockQ4 *dst) {
    quantize_blocks<BlockQ4, quantize_block_q4_minmax>(src, n, dst);
}

void quantize_row(DType t, const float *src, int64_t n, void *dst) {
    if (dtype_is_ggml_legacy(t)) return ggml_legacy_quantize_row(t, src, n, dst);
    switch (t) {
        case DType::Q8: return quantize_row_q8(src, n, static_cast<BlockQ8 *>(dst));
        case DType::Q4: return quantize_row_q4(src, n, static_cast<BlockQ4 *>(dst));
        case DType::GGML_Q2_K: case DType::GGML_Q3_K: case DType::GGML_Q4_K: case DType::GGML_Q5_K:
        case DType::GGML_Q6_K: return quantize_row_kquant(t, src, n, dst);
        default: fail(MST_ERR_INVALID_ARGUMENT, "quantize_row: {} is not a quantized type", dtype_name(t));
    }
}

void dequantize_row(DType t, const void *src, float *dst, int64_t n) {
    if (dtype_is_ggml_legacy(t)) return ggml_legacy_dequantize_row(t, src, dst, n);
    if (dtype_is_kquant(t)) return dequantize_row_kquant(t, src, dst, n);
    if (t == DType::Q8) {
        const auto *blocks = static_cast<const BlockQ8 *>(src);
        for (int64_t i = 0; i < n; ++i) {
            const BlockQ8 &b = blocks[i / kQuantBlock];
            dst[i] = half_to_float(b.d) * float(b.q[i % kQuantBlock]);
        }
        return;
    }
    if (t == DType::Q4) {
        const auto *blocks = static_cast<const BlockQ4 *>(src);
        for (int64_t i = 0; i < n; ++i) {
            const BlockQ4 &b = blocks[i / kQuantBlock];
            const int64_t j = i % kQuantBlock;
            const int code = j < 16 ? (b.q[j] & 0x0f) : (b.q[j - 16] >> 4);
            dst[i] = half_to_float(b.d) * float(code) + half_to_float(b.m);
        }
        return;
    }
    fail(MST_ERR_INVALID_ARGUMENT, "dequantize_row: {} is not a quantized type", dtype_name(t));
}

}  // namespace mst
