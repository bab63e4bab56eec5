// GGML's K-quant weight types (Q2_K .. Q6_K), byte for byte as GGUF files store them, so
// that a GGUF tensor of one of them streams into the kernels unchanged. A row is cut into
// super-blocks of 256 weights; each carries f16 super-scales and small integer scales
// (and, for Q2_K / Q4_K / Q5_K, minimums) of its 16- or 32-weight sub-blocks:
//
//   type   bytes  bits/w  sub-blocks   weight of code q in sub-block g
//   Q2_K     84   2.625   16 x 16      d * sc[g] * q - dmin * m[g]    q 0..3,  sc, m 4-bit
//   Q3_K    110   3.4375  16 x 16      d * (sc[g] - 32) * (q - 4)     q 0..7,  sc 6-bit
//   Q4_K    144   4.5      8 x 32      d * sc[g] * q - dmin * m[g]    q 0..15, sc, m 6-bit
//   Q5_K    176   5.5      8 x 32      d * sc[g] * q - dmin * m[g]    q 0..31, sc, m 6-bit
//   Q6_K    210   6.5625  16 x 16      d * sc[g] * (q - 32)           q 0..63, sc int8
//
// The bit positions are GGML's (comments at the structs). moestream's packed files pad a
// row whose length is not a multiple of 256 with zeros to whole super-blocks, as they do
// for Q4 / Q8; a GGUF tensor must hold whole super-blocks (the GGUF loader checks).
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace mst {

inline constexpr int64_t kSuperBlock = 256;

// Element i (0..255) of the two 128-halves: qs[32 * (i / 128) + i % 32] holds its two
// bits at shift 2 * ((i % 128) / 32). scales[g] is sc | m << 4 for sub-block g = i / 16.
struct BlockQ2K {
    uint8_t scales[16];
    uint8_t qs[64];
    uint16_t d;
    uint16_t dmin;
};

// The low two bits as in Q2_K; the third bit of element i is bit 4 * (i / 128) +
// (i % 128) / 32 of hmask[i % 32]. The 16 six-bit scales: the low nibble of scales[g] (g
// < 8) or the high nibble of scales[g - 8] (g >= 8), and two bits at 2 * (g / 4) of
// scales[8 + g % 4].
struct BlockQ3K {
    uint8_t hmask[32];
    uint8_t qs[64];
    uint8_t scales[12];
    uint16_t d;
};

// Sub-block g = i / 32: its 4-bit codes are the low (g even) or high (g odd) nibbles of
// qs[32 * (g / 2) .. + 31]. The eight 6-bit scales and minimums in 12 bytes: for g < 4,
// scales[g] and scales[g + 4] hold sc and m in their low six bits; for g >= 4 the low
// nibbles come from scales[g + 4] (sc low, m high) and the top two bits from the spare
// bits 6..7 of scales[g - 4] (sc) and scales[g] (m).
struct BlockQ4K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qs[128];
};

// Q4_K plus a fifth bit: bit g of qh[i % 32] for element i of sub-block g.
struct BlockQ5K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qh[32];
    uint8_t qs[128];
};

// Element i = 128 n + 32 k + l: low nibble of ql[64 n + l + 32 (k & 1)], taken from the
// high nibble when k >= 2; two high bits at 2 k of qh[32 n + l]. Scale g = i / 16.
struct BlockQ6K {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;
};

static_assert(sizeof(BlockQ2K) == 84 && sizeof(BlockQ3K) == 110 && sizeof(BlockQ4K) == 144 &&
                  sizeof(BlockQ5K) == 176 && sizeof(BlockQ6K) == 210,
              "K-quant blocks must match GGML's sizes");

// One super-block decoded to integers, the form every K-quant kernel multiplies:
//   weight i = d * scale[i / 16] * code[i] - dmin * min[i / 16]
// with unsigned codes (0..63), so that the kernels need one integer dot product per
// 16-weight group whatever the type. The symmetric types fold their offset into min
// (Q3_K: code = q, min = 4 * scale, dmin = d); Q4_K / Q5_K repeat each 32-weight
// sub-block's scale and minimum for its two groups. `offset` is that folded constant
// (4, 32 or 0), which the reference dequantizer uses to compute GGML's exact values.
struct KQuantCodes {
    float d;
    float dmin;
    int16_t scale[16];
    int16_t min[16];
    int offset;
    alignas(32) uint8_t code[256];
};

inline bool dtype_is_kquant(DType t) {
    return t == DType::GGML_Q2_K || t == DType::GGML_Q3_K || t == DType::GGML_Q4_K || t == DType::GGML_Q5_K ||
           t == DType::GGML_Q6_K;
}

// Decode one super-block of a K-quant type.
void kquant_unpack(DType t, const void *block, KQuantCodes &out);
// Only d, dmin, scale, min and offset: for SIMD kernels that decode the codes themselves.
void kquant_unpack_scales(DType t, const void *block, KQuantCodes &out);

// Decode the first n values of a row of super-blocks (GGML's dequantize_row_*: the same
// float operations in the same order, so the values are GGML's exactly).
void dequantize_row_kquant(DType t, const void *src, float *dst, int64_t n);

// Quantize the n values of one row into ceil(n / 256) super-blocks (the last padded with
// zeros). Throws MST_ERR_UNSUPPORTED when a value is not finite or a super-scale does not
// fit an f16. How the scales are fitted: ggml_kquants.cpp.
void quantize_row_kquant(DType t, const float *src, int64_t n, void *dst);

}  // namespace mst
