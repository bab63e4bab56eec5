// MXFP4, the OCP microscaling 4-bit float format gpt-oss checkpoints store their experts
// in. A row of `cols` elements is cut into blocks of 32; each element is an e2m1 float
// (sign, 2 exponent bits, 1 mantissa bit: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their
// negatives), two per byte with element 2j in the low nibble of byte j, and each block
// shares one e8m0 scale byte e meaning 2^(e - 127). A [rows][cols] matrix is therefore
// two arrays: blocks [rows][cols / 2] bytes and scales [rows][cols / 32] bytes, as the
// published checkpoints hold them (`*_blocks` [.., cols / 32, 16], `*_scales` [.., cols / 32]).
#pragma once

#include <cmath>
#include <cstdint>

namespace mst {

inline constexpr int64_t kMxfp4BlockSize = 32;
inline constexpr int64_t kMxfp4BlockBytes = kMxfp4BlockSize / 2;

// The e2m1 value of each nibble.
inline constexpr float kFp4Values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                         -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

// 2^(e - 127), exact for every byte (2^-127 is a float32 subnormal, 2^128 overflows to
// infinity as the reference's ldexp does).
inline float mxfp4_scale(uint8_t e) { return std::ldexp(1.0f, int(e) - 127); }

// Bytes of the blocks of one row of `cols` elements (cols a multiple of 32).
inline int64_t mxfp4_row_bytes(int64_t cols) { return cols / 2; }
// Scale bytes of one row.
inline int64_t mxfp4_row_scales(int64_t cols) { return cols / kMxfp4BlockSize; }

// Element c of a row, decoded one at a time (tests and references; kernels decode whole
// blocks).
inline float mxfp4_element(const uint8_t *row_blocks, const uint8_t *row_scales, int64_t c) {
    const uint8_t byte = row_blocks[c / 2];
    const uint8_t nibble = c % 2 == 0 ? (byte & 0x0f) : (byte >> 4);
    return kFp4Values[nibble] * mxfp4_scale(row_scales[c / kMxfp4BlockSize]);
}

}  // namespace mst
