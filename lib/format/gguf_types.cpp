#include "format/gguf_types.h"

#include <fmt/format.h>

#include <array>

namespace mst {
namespace {

// Indexed by type number; a null name marks a number ggml does not (or no longer) use.
// Block sizes as ggml defines them (ggml.c's type_traits): a K-quant block is 256
// elements, the others 32.
constexpr std::array<GgmlTypeInfo, 43> kGgmlTypes = {{
    {"F32", 1, 4},        {"F16", 1, 2},       {"Q4_0", 32, 18},     {"Q4_1", 32, 20},    {nullptr, 0, 0},
    {nullptr, 0, 0},      {"Q5_0", 32, 22},    {"Q5_1", 32, 24},     {"Q8_0", 32, 34},    {"Q8_1", 32, 36},
    {"Q2_K", 256, 84},    {"Q3_K", 256, 110},  {"Q4_K", 256, 144},   {"Q5_K", 256, 176},  {"Q6_K", 256, 210},
    {"Q8_K", 256, 292},   {"IQ2_XXS", 256, 66}, {"IQ2_XS", 256, 74}, {"IQ3_XXS", 256, 98}, {"IQ1_S", 256, 50},
    {"IQ4_NL", 32, 18},   {"IQ3_S", 256, 110}, {"IQ2_S", 256, 82},   {"IQ4_XS", 256, 136}, {"I8", 1, 1},
    {"I16", 1, 2},        {"I32", 1, 4},       {"I64", 1, 8},        {"F64", 1, 8},       {"IQ1_M", 256, 56},
    {"BF16", 1, 2},       {nullptr, 0, 0},     {nullptr, 0, 0},      {nullptr, 0, 0},     {"TQ1_0", 256, 54},
    {"TQ2_0", 256, 66},   {nullptr, 0, 0},     {nullptr, 0, 0},      {nullptr, 0, 0},     {"MXFP4", 32, 17},
    {"NVFP4", 64, 36},    {"Q1_0", 128, 18},   {"Q2_0", 64, 18},
}};

constexpr std::array<const char *, kGgufValueTypeCount> kValueTypeNames = {
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY", "UINT64", "INT64",
    "FLOAT64"};
constexpr std::array<uint8_t, kGgufValueTypeCount> kValueTypeSizes = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

}  // namespace

std::string gguf_value_type_name(GgufValueType t) {
    const auto i = uint32_t(t);
    return i < kGgufValueTypeCount ? kValueTypeNames[i] : fmt::format("type {}", i);
}

size_t gguf_value_type_size(GgufValueType t) {
    const auto i = uint32_t(t);
    return i < kGgufValueTypeCount ? kValueTypeSizes[i] : 0;
}

bool gguf_value_type_is_integer(GgufValueType t) {
    switch (t) {
        case GgufValueType::UInt8: case GgufValueType::Int8: case GgufValueType::UInt16: case GgufValueType::Int16:
        case GgufValueType::UInt32: case GgufValueType::Int32: case GgufValueType::UInt64: case GgufValueType::Int64:
            return true;
        default:
            return false;
    }
}

bool gguf_value_type_is_signed(GgufValueType t) {
    return t == GgufValueType::Int8 || t == GgufValueType::Int16 || t == GgufValueType::Int32 ||
           t == GgufValueType::Int64;
}

std::optional<GgmlTypeInfo> ggml_type_info(uint32_t type) {
    if (type >= kGgmlTypes.size() || !kGgmlTypes[type].name) return std::nullopt;
    return kGgmlTypes[type];
}

std::string ggml_type_name(uint32_t type) {
    const auto info = ggml_type_info(type);
    return info ? std::string(info->name) : fmt::format("type {}", type);
}

std::optional<DType> ggml_type_to_dtype(uint32_t type) {
    switch (type) {
        case ggml_type::F32: return DType::F32;
        case ggml_type::F16: return DType::F16;
        case ggml_type::BF16: return DType::BF16;
        case ggml_type::Q8_0: return DType::Q8;
        case ggml_type::Q4_1: return DType::Q4;
        case ggml_type::I8: return DType::I8;
        case ggml_type::I16: return DType::I16;
        case ggml_type::I32: return DType::I32;
        case ggml_type::I64: return DType::I64;
        case ggml_type::F64: return DType::F64;
        default: return std::nullopt;
    }
}

std::optional<uint32_t> dtype_to_ggml_type(DType t) {
    for (uint32_t type = 0; type < kGgmlTypes.size(); ++type)
        if (ggml_type_to_dtype(type) == t) return type;
    return std::nullopt;
}

}  // namespace mst
