// The legacy GGML block types found in GGUF files (llama.cpp's ggml-common.h layouts),
// stored and computed on as they are. Every one of them cuts a row into sub-blocks of 32
// elements whose values are scale * code + min with small integer codes, which is what
// lets one integer kernel shape serve them all (backends/cpu/quant_kernels_ggml_legacy.h):
//
//   GGML_Q4_0   f16 d, 16 bytes of nibbles           x = d * (q - 8)               18 B / 32 = 4.5 bits
//   GGML_Q5_0   f16 d, u32 qh, 16 bytes of nibbles   x = d * (q - 16), q 5 bits    22 B / 32 = 5.5 bits
//   GGML_Q5_1   f16 d, f16 m, u32 qh, 16 bytes       x = d * q + m, q 5 bits       24 B / 32 = 6.0 bits
//   GGML_IQ4_NL f16 d, 16 bytes of nibbles           x = d * kIq4NlValues[q]       18 B / 32 = 4.5 bits
//   GGML_IQ4_XS f16 d, u16 scales_h, 4 B scales_l,   x = d * (ls - 32) * kIq4NlValues[q]
//               128 bytes of nibbles, per 256                                     136 B / 256 = 4.25 bits
//   GGML_MXFP4  e8m0 e, 16 bytes of e2m1 nibbles     x = 2^(e - 128) * kMxfp4Values[q]  17 B / 32 = 4.25 bits
//
// Nibbles are packed as in moestream's Q4 (core/quant.h): byte j holds element j in its
// low nibble and element j + 16 in its high one. The 5th bit of Q5 element j is bit j of
// the little-endian qh. IQ4_XS's 6-bit sub-block scale ls of sub-block i (of 8) is the
// nibble i % 2 of scales_l[i / 2] (low first) with bits 2i, 2i+1 of scales_h above it.
// GGML_MXFP4 keeps its scale in the block; moestream's own MXFP4 (core/mxfp4.h, gpt-oss
// safetensors) keeps scales in a separate tensor, which is why the two are different types.
//
// A row of these types is a whole number of blocks (GGUF guarantees it); quantize_row
// refuses other lengths, and the CPU matmul refuses such weights, naming the block size.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace mst {

inline constexpr int64_t kGgmlSubBlock = 32;
inline constexpr int64_t kGgmlIq4XsBlock = 256;

struct BlockGgmlQ4_0 {
    uint16_t d;
    uint8_t qs[16];
};
struct BlockGgmlQ5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[16];
};
struct BlockGgmlQ5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[16];
};
struct BlockGgmlIq4Nl {
    uint16_t d;
    uint8_t qs[16];
};
struct BlockGgmlIq4Xs {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[4];
    uint8_t qs[128];
};
struct BlockGgmlMxfp4 {
    uint8_t e;
    uint8_t qs[16];
};
static_assert(sizeof(BlockGgmlQ4_0) == 18 && sizeof(BlockGgmlQ5_0) == 22 && sizeof(BlockGgmlQ5_1) == 24 &&
                  sizeof(BlockGgmlIq4Nl) == 18 && sizeof(BlockGgmlIq4Xs) == 136 && sizeof(BlockGgmlMxfp4) == 17,
              "GGML blocks must not be padded");

// IQ4_NL's non-linear levels (also IQ4_XS's), and e2m1's values doubled so that they are
// integers (GGML_MXFP4's scale is halved to match: 2^(e - 128) rather than 2^(e - 127)).
inline constexpr int8_t kIq4NlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
inline constexpr int8_t kMxfp4DoubledValues[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

inline bool dtype_is_ggml_legacy(DType t) {
    return t == DType::GGML_Q4_0 || t == DType::GGML_Q5_0 || t == DType::GGML_Q5_1 || t == DType::GGML_IQ4_NL ||
           t == DType::GGML_IQ4_XS || t == DType::GGML_MXFP4;
}

// One sub-block of 32 decoded: x[i] = scale * code[i] + min exactly (in float, as ggml's
// own dequantization computes it), |code| <= 127.
struct GgmlSubBlockCodes {
    int8_t code[32];
    float scale;
    float min;
};

// The e8m0 exponent byte of GGML_MXFP4 as the float 2^(e - 128) (the halved scale).
float ggml_e8m0_half_to_float(uint8_t e);

// Decode sub-block `sub` (of 32 elements) of a row of type t starting at `row`.
void ggml_legacy_decode(DType t, const uint8_t *row, int64_t sub, GgmlSubBlockCodes &out);

// Decode the first n values of a row (n need not end on a block).
void ggml_legacy_dequantize_row(DType t, const void *src, float *dst, int64_t n);

// Quantize a row of n values (a multiple of the type's block) by round-to-nearest: each
// block's scale comes from its largest magnitude (and Q5_1's minimum from its smallest
// value), each code is the nearest level; no search for a better scale, unlike
// llama.cpp's quantizers, so the error is somewhat larger than theirs at the same size.
// It makes test data. Throws MST_ERR_INVALID_ARGUMENT for a length off the block and
// MST_ERR_UNSUPPORTED for a value that is not finite or a scale beyond an f16.
void ggml_legacy_quantize_row(DType t, const float *src, int64_t n, void *dst);

}  // namespace mst
