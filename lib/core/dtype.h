// Element types of stored tensors and their conversions to float32.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace mst {

// MXFP4 (OCP microscaling FP4) is a compute type, not a safetensors one: checkpoints store
// its blocks and scales as U8 tensors, and a WeightView of it points at both (see
// core/mxfp4.h for the encoding). Q8 and Q4 are moestream's own block-quantized types
// (core/quant.h), found only in packed files: a row is cut into blocks of 32 elements,
// each stored with its scale. PACKED_I4 and PACKED_I8 are compute types like MXFP4:
// compressed-tensors "pack-quantized" integers (core/packed_int.h), stored as I32 words
// with a separate tensor of bf16 scales, which a WeightView of them points at. The GGML_
// types are llama.cpp's block types as GGUF files store them: the legacy ones
// (core/ggml_legacy_quants.h; GGML_MXFP4 carries its scale inside each block) and the
// K-quants GGML_Q2_K .. GGML_Q6_K (core/ggml_kquants.h, blocks of 256 elements), which
// moestream's packed files hold too.
enum class DType : uint8_t { F32, F16, BF16, I32, I64, I8, U8, BOOL, F64, I16, MXFP4, F8_E4M3, Q8, Q4, PACKED_I4,
                             PACKED_I8, GGML_Q4_0, GGML_Q5_0, GGML_Q5_1, GGML_IQ4_NL, GGML_IQ4_XS, GGML_MXFP4,
                             GGML_Q2_K, GGML_Q3_K, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K };

// Bytes per element; for a block-quantized type, bytes per block of dtype_block_elems;
// 0 for MXFP4, PACKED_I4 and PACKED_I8, whose elements take part of a byte or word plus
// shared scales (core/mxfp4.h and core/packed_int.h give their sizes).
size_t dtype_size(DType t);
// Elements per block: 32 for Q8 / Q4 and the GGML legacy types, 256 for GGML_IQ4_XS and
// the K-quants, 1 for the others.
size_t dtype_block_elems(DType t);
// Block-quantized weight types the matmul computes on: moestream's Q8 / Q4 and the GGML
// types.
inline bool dtype_is_quantized(DType t) {
    return t == DType::Q8 || t == DType::Q4 || (t >= DType::GGML_Q4_0 && t <= DType::GGML_Q6_K);
}
// Bytes of one row of `cols` elements. A block type stores ceil(cols / block) blocks per
// row, the last one padded with zeros, so that every row starts on a block (GGUF rows are
// whole blocks; packed files pad K-quant rows shorter than 256).
uint64_t dtype_row_bytes(DType t, int64_t cols);
// The safetensors spelling ("BF16", ...); "Q8" / "Q4" for moestream's quantized types,
// GGML's for the GGML ones ("Q4_0", "IQ4_XS", "Q2_K", ...) except "GGML_MXFP4", which
// would otherwise read as moestream's MXFP4.
std::string_view dtype_name(DType t);
// Parse a safetensors dtype string; nullopt for one moestream does not know.
std::optional<DType> dtype_from_safetensors(std::string_view name);
// dtype_name's inverse over every type, the quantized ones included (packed files).
std::optional<DType> dtype_from_name(std::string_view name);
// Float types a weight may be stored in (F32, F16, BF16).
inline bool dtype_is_float_weight(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

inline float bf16_to_f32(uint16_t h) {
    uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

// Round-to-nearest-even, as PyTorch does when casting to bfloat16.
inline uint16_t f32_to_bf16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);  // quiet NaN
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return uint16_t(bits >> 16);
}

float f16_to_f32(uint16_t h);

// FP8 E4M3 ("e4m3fn": bias 7, no infinities, 0x7f / 0xff are NaN, largest finite 448),
// the weight type of DeepSeek-V3 and Kimi K2 checkpoints. Exact.
float fp8_e4m3_to_f32(uint8_t b);
uint16_t f32_to_f16(float f);

// Convert n elements of a float weight type (or F8_E4M3, without any block scale) to
// float32. For a block-quantized type src starts on a block (e.g. a row) and the first n
// elements are decoded.
void convert_to_f32(DType t, const void *src, float *dst, size_t n);

}  // namespace mst
