// Integer weights as compressed-tensors stores them in its "pack-quantized" format (the
// routed experts of Kimi K2.5, and W4A16 / W8A16 checkpoints made by llm-compressor).
// The conventions, checked against compressed_tensors' pack_to_int32 / unpack_from_int32:
//   - a weight is q * scale, q a signed integer of `bits` bits (4 or 8), symmetric (no zero
//     point); scale is bf16, one per `group_size` consecutive inputs of a row (strategy
//     "group"), or one per row (strategy "channel": group_size = cols);
//   - q is stored unsigned as q + 2^(bits - 1) (q + 8 for INT4, q + 128 for INT8);
//   - 32 / bits values share one int32 word, little end first: element c of a row lies in
//     word c / (32 / bits) at bits bits * (c % (32 / bits)); a row is padded with zero
//     values to a whole word. So, read as bytes, INT4 element 2j is the low nibble of byte j
//     and 2j + 1 its high nibble, and INT8 element j is byte j.
// A [rows][cols] matrix is thus `weight_packed` I32 [rows][ceil(cols * bits / 32)] and
// `weight_scale` BF16 [rows][cols / group_size], plus `weight_shape` [rows, cols].
#pragma once

#include <cstdint>
#include <cstring>

#include "core/dtype.h"

namespace mst {

// 4 for PACKED_I4, 8 for PACKED_I8, 0 for any other type.
inline int packed_int_bits(DType t) { return t == DType::PACKED_I4 ? 4 : t == DType::PACKED_I8 ? 8 : 0; }
inline bool dtype_is_packed_int(DType t) { return packed_int_bits(t) != 0; }

// Words (int32) of one row of `cols` values.
inline int64_t packed_int_row_words(int64_t cols, int bits) {
    const int64_t per_word = 32 / bits;
    return (cols + per_word - 1) / per_word;
}

// Scale `g` of a row of bf16 scales, which need not be aligned.
inline float packed_int_scale(const uint8_t *row_scales, int64_t g) {
    uint16_t h;
    std::memcpy(&h, row_scales + 2 * g, sizeof h);
    return bf16_to_f32(h);
}

// The signed integer of element c of a row (words read as little-endian bytes).
inline int packed_int_code(const uint8_t *row_words, int64_t c, int bits) {
    if (bits == 8) return int(row_words[c]) - 128;
    const uint8_t byte = row_words[c / 2];
    return int(c % 2 == 0 ? (byte & 0x0f) : (byte >> 4)) - 8;
}

// Element c of a row, decoded one at a time (tests and references; kernels decode whole groups).
inline float packed_int_element(const uint8_t *row_words, const uint8_t *row_scales, int64_t group_size, int64_t c,
                                int bits) {
    return float(packed_int_code(row_words, c, bits)) * packed_int_scale(row_scales, c / group_size);
}

}  // namespace mst
