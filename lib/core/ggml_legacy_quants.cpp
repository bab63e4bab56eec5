#include "core/ggml_legacy_quants.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/quant.h"

namespace mst {
namespace {

constexpr float kMaxHalf = 65504.0f;

uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

void unpack_nibbles(const uint8_t *qs, uint8_t *codes) {
    for (int j = 0; j < 16; ++j) {
        codes[j] = qs[j] & 0x0f;
        codes[j + 16] = qs[j] >> 4;
    }
}

void pack_nibbles(const uint8_t *codes, uint8_t *qs) {
    for (int j = 0; j < 16; ++j) qs[j] = uint8_t(codes[j] | (codes[j + 16] << 4));
}

// The element of x with the largest magnitude, sign kept: the legacy symmetric types map
// it onto their most negative level, which is one step longer than the positive side.
float signed_extreme(const float *x, int64_t n) {
    float best = 0.0f;
    for (int64_t i = 0; i < n; ++i)
        if (std::fabs(x[i]) > std::fabs(best)) best = x[i];
    return best;
}

uint16_t checked_half(float v) {
    if (std::fabs(v) > kMaxHalf) fail(MST_ERR_UNSUPPORTED, "a block's scale {} is too large for an f16", v);
    return float_to_half(v);
}

// The index of the level of `table` nearest to v (the first of two equally near).
uint8_t nearest_level(const int8_t *table, float v) {
    uint8_t best = 0;
    for (uint8_t k = 1; k < 16; ++k)
        if (std::fabs(v - float(table[k])) < std::fabs(v - float(table[best]))) best = k;
    return best;
}

int round_clamped(float v, int lo, int hi) { return int(std::clamp(std::nearbyint(v), float(lo), float(hi))); }

// Q4_0 and Q5_0: codes in [0, 2^bits), x = d * (q - 2^(bits-1)).
template <int Bits>
float quantize_symmetric(const float *x, uint8_t *codes) {
    constexpr int kHalf = 1 << (Bits - 1);
    const float d = half_to_float(checked_half(signed_extreme(x, 32) / float(-kHalf)));
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < 32; ++i) codes[i] = uint8_t(round_clamped(x[i] * inv, -kHalf, kHalf - 1) + kHalf);
    return d;
}

void set_high_bits(const uint8_t *codes, uint8_t *qh) {
    uint32_t bits = 0;
    for (int i = 0; i < 32; ++i) bits |= uint32_t(codes[i] >> 4) << i;
    std::memcpy(qh, &bits, sizeof bits);
}

void quantize_q4_0(const float *x, BlockGgmlQ4_0 &b) {
    uint8_t codes[32];
    b.d = float_to_half(quantize_symmetric<4>(x, codes));
    pack_nibbles(codes, b.qs);
}

void quantize_q5_0(const float *x, BlockGgmlQ5_0 &b) {
    uint8_t codes[32];
    b.d = float_to_half(quantize_symmetric<5>(x, codes));
    set_high_bits(codes, b.qh);
    for (uint8_t &c : codes) c &= 0x0f;
    pack_nibbles(codes, b.qs);
}

void quantize_q5_1(const float *x, BlockGgmlQ5_1 &b) {
    const auto [lo_it, hi_it] = std::minmax_element(x, x + 32);
    const float m = half_to_float(checked_half(*lo_it));
    const float d = half_to_float(checked_half((*hi_it - m) / 31.0f));
    const float inv = d > 0.0f ? 1.0f / d : 0.0f;
    uint8_t codes[32];
    for (int i = 0; i < 32; ++i) codes[i] = uint8_t(round_clamped((x[i] - m) * inv, 0, 31));
    b.d = float_to_half(d);
    b.m = float_to_half(m);
    set_high_bits(codes, b.qh);
    for (uint8_t &c : codes) c &= 0x0f;
    pack_nibbles(codes, b.qs);
}

// Codes of 32 values against the IQ4_NL levels scaled by d.
void assign_iq4(const float *x, float d, uint8_t *qs) {
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t codes[32];
    for (int i = 0; i < 32; ++i) codes[i] = nearest_level(kIq4NlValues, x[i] * inv);
    pack_nibbles(codes, qs);
}

void quantize_iq4_nl(const float *x, BlockGgmlIq4Nl &b) {
    b.d = checked_half(signed_extreme(x, 32) / float(kIq4NlValues[0]));
    assign_iq4(x, half_to_float(b.d), b.qs);
}

// Each sub-block's own scale (its extreme onto level -127) is rounded to a 6-bit multiple
// of the super-block's d, which maps the largest of them onto -32.
void quantize_iq4_xs(const float *x, BlockGgmlIq4Xs &b) {
    float sub_scale[8], extreme = 0.0f;
    for (int s = 0; s < 8; ++s) {
        sub_scale[s] = signed_extreme(x + 32 * s, 32) / float(kIq4NlValues[0]);
        if (std::fabs(sub_scale[s]) > std::fabs(extreme)) extreme = sub_scale[s];
    }
    b.d = checked_half(extreme / -32.0f);
    const float d = half_to_float(b.d);
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    b.scales_h = 0;
    std::memset(b.scales_l, 0, sizeof b.scales_l);
    for (int s = 0; s < 8; ++s) {
        const int ls = round_clamped(sub_scale[s] * inv, -32, 31) + 32;
        b.scales_l[s / 2] |= uint8_t((ls & 0x0f) << (4 * (s % 2)));
        b.scales_h |= uint16_t((ls >> 4) << (2 * s));
        assign_iq4(x + 32 * s, d * float(ls - 32), b.qs + 16 * s);
    }
}

// The smallest power-of-two scale that puts the block's largest magnitude within e2m1's
// largest value (6, i.e. 12 doubled): nothing clips, at the cost of sometimes leaving the
// top level unused (the OCP recipe floor(log2(amax)) - 2 clips instead).
void quantize_mxfp4(const float *x, BlockGgmlMxfp4 &b) {
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    // amax / 2^(e - 128) <= 12; the loops correct log2's rounding at exact powers of two.
    int e = amax > 0.0f ? std::clamp(int(std::ceil(std::log2(double(amax) / 12.0))) + 128, 0, 254) : 0;
    while (e > 0 && ggml_e8m0_half_to_float(uint8_t(e - 1)) * 12.0f >= amax) --e;
    while (e < 254 && ggml_e8m0_half_to_float(uint8_t(e)) * 12.0f < amax) ++e;
    b.e = uint8_t(e);
    const float scale = ggml_e8m0_half_to_float(b.e);  // divided by, not inverted: 2^128 overflows
    uint8_t codes[32];
    for (int i = 0; i < 32; ++i) codes[i] = nearest_level(kMxfp4DoubledValues, x[i] / scale);
    pack_nibbles(codes, b.qs);
}

template <typename Block, void (*QuantizeBlock)(const float *, Block &)>
void quantize_blocks(const float *src, int64_t n, void *dst, int64_t block_elems) {
    auto *blocks = static_cast<Block *>(dst);
    for (int64_t i = 0; i < n; i += block_elems) QuantizeBlock(src + i, blocks[i / block_elems]);
}

}  // namespace

float ggml_e8m0_half_to_float(uint8_t e) {
    // 2^(e - 128): a normal float for e >= 2, else the subnormals 2^-127 and 2^-128.
    const uint32_t bits = e >= 2 ? uint32_t(e - 1) << 23 : 0x00200000u << e;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

void ggml_legacy_decode(DType t, const uint8_t *row, int64_t sub, GgmlSubBlockCodes &out) {
    uint8_t q[32];
    out.min = 0.0f;
    switch (t) {
        case DType::GGML_Q4_0: {
            const auto &b = reinterpret_cast<const BlockGgmlQ4_0 *>(row)[sub];
            unpack_nibbles(b.qs, q);
            for (int i = 0; i < 32; ++i) out.code[i] = int8_t(q[i] - 8);
            out.scale = half_to_float(b.d);
            return;
        }
        case DType::GGML_Q5_0:
        case DType::GGML_Q5_1: {
            const bool has_min = t == DType::GGML_Q5_1;
            const uint8_t *block = row + sub * (has_min ? sizeof(BlockGgmlQ5_1) : sizeof(BlockGgmlQ5_0));
            uint16_t d, m = 0;
            std::memcpy(&d, block, 2);
            if (has_min) std::memcpy(&m, block + 2, 2);
            const uint8_t *qh = block + (has_min ? 4 : 2);
            const uint32_t high = load_u32(qh);
            unpack_nibbles(qh + 4, q);
            for (int i = 0; i < 32; ++i)
                out.code[i] = int8_t(int(q[i] | (((high >> i) & 1u) << 4)) - (has_min ? 0 : 16));
            out.scale = half_to_float(d);
            out.min = half_to_float(m);
            return;
        }
        case DType::GGML_IQ4_NL: {
            const auto &b = reinterpret_cast<const BlockGgmlIq4Nl *>(row)[sub];
            unpack_nibbles(b.qs, q);
            for (int i = 0; i < 32; ++i) out.code[i] = kIq4NlValues[q[i]];
            out.scale = half_to_float(b.d);
            return;
        }
        case DType::GGML_IQ4_XS: {
            const auto &b = reinterpret_cast<const BlockGgmlIq4Xs *>(row)[sub / 8];
            const int s = int(sub % 8);
            const int ls = ((b.scales_l[s / 2] >> (4 * (s % 2))) & 0x0f) | (((b.scales_h >> (2 * s)) & 3) << 4);
            unpack_nibbles(b.qs + 16 * s, q);
            for (int i = 0; i < 32; ++i) out.code[i] = kIq4NlValues[q[i]];
            out.scale = half_to_float(b.d) * float(ls - 32);
            return;
        }
        case DType::GGML_MXFP4: {
            const auto &b = reinterpret_cast<const BlockGgmlMxfp4 *>(row)[sub];
            unpack_nibbles(b.qs, q);
            for (int i = 0; i < 32; ++i) out.code[i] = kMxfp4DoubledValues[q[i]];
            out.scale = ggml_e8m0_half_to_float(b.e);
            return;
        }
        default:
            fail(MST_ERR_INVALID_ARGUMENT, "{} is not a GGML legacy block type", dtype_name(t));
    }
}

void ggml_legacy_dequantize_row(DType t, const void *src, float *dst, int64_t n) {
    const auto *row = static_cast<const uint8_t *>(src);
    GgmlSubBlockCodes codes;
    for (int64_t c0 = 0; c0 < n; c0 += kGgmlSubBlock) {
        ggml_legacy_decode(t, row, c0 / kGgmlSubBlock, codes);
        const int64_t len = std::min(kGgmlSubBlock, n - c0);
        for (int64_t i = 0; i < len; ++i) dst[c0 + i] = codes.scale * float(codes.code[i]) + codes.min;
    }
}

void ggml_legacy_quantize_row(DType t, const float *src, int64_t n, void *dst) {
    const int64_t block = int64_t(dtype_block_elems(t));
    if (!dtype_is_ggml_legacy(t)) fail(MST_ERR_INVALID_ARGUMENT, "{} is not a GGML legacy block type", dtype_name(t));
    if (n % block != 0)
        fail(MST_ERR_INVALID_ARGUMENT, "cannot quantize a row of {} values to {}: not a multiple of its {}-element block",
             n, dtype_name(t), block);
    for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(src[i]))
            fail(MST_ERR_UNSUPPORTED, "cannot quantize a value that is not finite ({} at element {})", src[i], i);
    switch (t) {
        case DType::GGML_Q4_0: return quantize_blocks<BlockGgmlQ4_0, quantize_q4_0>(src, n, dst, block);
        case DType::GGML_Q5_0: return quantize_blocks<BlockGgmlQ5_0, quantize_q5_0>(src, n, dst, block);
        case DType::GGML_Q5_1: return quantize_blocks<BlockGgmlQ5_1, quantize_q5_1>(src, n, dst, block);
        case DType::GGML_IQ4_NL: return quantize_blocks<BlockGgmlIq4Nl, quantize_iq4_nl>(src, n, dst, block);
        case DType::GGML_IQ4_XS: return quantize_blocks<BlockGgmlIq4Xs, quantize_iq4_xs>(src, n, dst, block);
        case DType::GGML_MXFP4: return quantize_blocks<BlockGgmlMxfp4, quantize_mxfp4>(src, n, dst, block);
        default: return;
    }
}

}  // namespace mst
