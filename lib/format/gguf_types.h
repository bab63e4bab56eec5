// The two type tables of the GGUF container (llama.cpp's model file): the types of
// metadata values, and the ggml tensor types with their block sizes. A tensor of a ggml
// type is stored as rows of ne[0] elements cut into blocks of block_elems elements,
// block_bytes each; moestream computes on the few types that match one of its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/dtype.h"

namespace mst {

// Metadata value types, numbered as the GGUF specification numbers them.
enum class GgufValueType : uint32_t {
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
    String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
};
inline constexpr uint32_t kGgufValueTypeCount = 13;

// "UINT32", "ARRAY", ... as the specification spells them; "type 99" for an unknown one.
std::string gguf_value_type_name(GgufValueType t);
// Bytes of a fixed-size value (0 for String and Array, whose size is in the file).
size_t gguf_value_type_size(GgufValueType t);
bool gguf_value_type_is_integer(GgufValueType t);
bool gguf_value_type_is_signed(GgufValueType t);

// ggml tensor types, by their number in a GGUF file. Numbers that ggml retired (4, 5,
// 31-33, 36-38) are not listed: a file using them is refused as an unknown type.
namespace ggml_type {
constexpr uint32_t F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9, Q2_K = 10,
                   Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18,
                   IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26,
                   I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40,
                   Q1_0 = 41, Q2_0 = 42;
}

struct GgmlTypeInfo {
    const char *name;      // "Q8_0", as ggml names it
    uint32_t block_elems;  // elements per block (1 for plain types)
    uint32_t block_bytes;  // bytes per block
};

// The layout of a known ggml type; nullopt for an unknown number.
std::optional<GgmlTypeInfo> ggml_type_info(uint32_t type);
// "Q4_K", or "type 77" for an unknown number (for error messages).
std::string ggml_type_name(uint32_t type);
// The moestream type whose bytes are the same as this ggml type's: F32, F16, BF16, the
// integer types, Q8_0, whose block (an f16 scale, then 32 int8 codes) is moestream's Q8
// block, and Q4_1, whose block (f16 scale d, f16 minimum m, 16 bytes holding element j in
// the low nibble of byte j and element j + 16 in its high nibble; x = d * q + m) is
// moestream's Q4 block (core/quant.h). nullopt for the others, which moestream cannot
// compute on.
std::optional<DType> ggml_type_to_dtype(uint32_t type);
// The inverse, for the writer of test files; nullopt for a moestream type GGUF lacks.
std::optional<uint32_t> dtype_to_ggml_type(DType t);

}  // namespace mst
