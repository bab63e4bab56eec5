// moestream's block-quantized weight types. A row of `cols` weights is cut into blocks of
// 32 (the last one padded with zeros); each block carries its own f16 scale, so one
// outlier only coarsens the 31 weights beside it.
//
//   Q8: 8-bit signed codes, x = d * q, q in [-127, 127]            34 bytes / 32 = 8.5 bits per weight
//   Q4: 4-bit unsigned codes, x = d * q + m, q in [0, 15]           20 bytes / 32 = 5.0 bits per weight
//
// Q4 keeps a minimum as well as a scale because a block's weights are rarely centred on
// zero: the 16 levels then span [min, max] instead of [-max|x|, max|x|]. Its scale and
// minimum are fitted by least squares rather than taken from the block's extremes (see
// quantize_row_q4), which lowers the error at the same size; docs/packed_format.md has
// the measurements.
//
// Blocks are stored little-endian without padding; the CPU kernels read them unaligned.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/dtype.h"

namespace mst {

inline constexpr int64_t kQuantBlock = 32;

struct BlockQ8 {
    uint16_t d;        // f16 scale
    int8_t q[32];
};

// Byte j of q holds element j in its low nibble and element j + 16 in its high nibble,
// so one 16-byte load unpacks into the block's 32 codes in order.
struct BlockQ4 {
    uint16_t d;        // f16 scale
    uint16_t m;        // f16 minimum
    uint8_t q[16];
};

static_assert(sizeof(BlockQ8) == 34 && sizeof(BlockQ4) == 20, "quantized blocks must not be padded");

// f16 bits to float by bit manipulation (core/dtype's f16_to_f32 is exact too, but uses
// ldexp and is too slow for kernels); subnormals go through one exact multiply.
inline float half_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    const uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0) {
        const float magnitude = float(mantissa) * 5.9604644775390625e-8f;  // mantissa * 2^-24
        std::memcpy(&bits, &magnitude, sizeof bits);
        bits |= sign;
    } else if (exponent == 31) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

// float to f16 bits, rounding to nearest even: the same results as core/dtype's
// f32_to_f16, by bit manipulation, fast enough for the quantizers' inner loops.
uint16_t float_to_half(float f);

// Quantize the n values of one row into ceil(n / 32) blocks at dst (dtype_row_bytes
// bytes); a K-quant type (core/ggml_kquants.h) into ceil(n / 256) super-blocks. Throws MST_ERR_UNSUPPORTED when a value is not finite or a block's scale or
// minimum does not fit an f16 (|x| beyond about 65000): the caller names the tensor.
void quantize_row(DType t, const float *src, int64_t n, void *dst);
void quantize_row_q8(const float *src, int64_t n, BlockQ8 *dst);
// Q4 with scale and minimum fitted to each block by alternating least squares.
void quantize_row_q4(const float *src, int64_t n, BlockQ4 *dst);
// Q4 with the block's minimum and (max - min) / 15 as scale, rounded to nearest: the
// plain scheme, kept to measure what the fitted one gains.
void quantize_row_q4_minmax(const float *src, int64_t n, BlockQ4 *dst);

// Decode the first n values of a row of Q8, Q4 or K-quant blocks. Both quantize_row and
// this take the GGML legacy types too (core/ggml_legacy_quants.h; quantized rows are
// whole blocks).
void dequantize_row(DType t, const void *src, float *dst, int64_t n);

}  // namespace mst
