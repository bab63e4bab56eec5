#include "core/dtype.h"

#include <cmath>

#include "core/error.h"
#include "core/ggml_kquants.h"
#include "core/ggml_legacy_quants.h"
#include "core/quant.h"

namespace mst {

size_t dtype_size(DType t) {
    switch (t) {
        case DType::F64: case DType::I64: return 8;
        case DType::F32: case DType::I32: return 4;
        case DType::F16: case DType::BF16: case DType::I16: return 2;
        case DType::I8: case DType::U8: case DType::BOOL: case DType::F8_E4M3: return 1;
        case DType::MXFP4: case DType::PACKED_I4: case DType::PACKED_I8: return 0;
        case DType::Q8: return sizeof(BlockQ8);
        case DType::Q4: return sizeof(BlockQ4);
        case DType::GGML_Q4_0: return sizeof(BlockGgmlQ4_0);
        case DType::GGML_Q5_0: return sizeof(BlockGgmlQ5_0);
        case DType::GGML_Q5_1: return sizeof(BlockGgmlQ5_1);
        case DType::GGML_IQ4_NL: return sizeof(BlockGgmlIq4Nl);
        case DType::GGML_IQ4_XS: return sizeof(BlockGgmlIq4Xs);
        case DType::GGML_MXFP4: return sizeof(BlockGgmlMxfp4);
        case DType::GGML_Q2_K: return sizeof(BlockQ2K);
        case DType::GGML_Q3_K: return sizeof(BlockQ3K);
        case DType::GGML_Q4_K: return sizeof(BlockQ4K);
        case DType::GGML_Q5_K: return sizeof(BlockQ5K);
        case DType::GGML_Q6_K: return sizeof(BlockQ6K);
    }
    return 0;
}

size_t dtype_block_elems(DType t) {
    if (t == DType::GGML_IQ4_XS) return size_t(kGgmlIq4XsBlock);
    if (dtype_is_kquant(t)) return size_t(kSuperBlock);
    return dtype_is_quantized(t) ? size_t(kQuantBlock) : 1;
}

uint64_t dtype_row_bytes(DType t, int64_t cols) {
    const uint64_t block = dtype_block_elems(t);
    return (uint64_t(cols) + block - 1) / block * dtype_size(t);
}

std::string_view dtype_name(DType t) {
    switch (t) {
        case DType::F32: return "F32";
        case DType::F16: return "F16";
        case DType::BF16: return "BF16";
        case DType::I32: return "I32";
        case DType::I64: return "I64";
        case DType::I16: return "I16";
        case DType::I8: return "I8";
        case DType::U8: return "U8";
        case DType::BOOL: return "BOOL";
        case DType::F64: return "F64";
        case DType::MXFP4: return "MXFP4";
        case DType::F8_E4M3: return "F8_E4M3";
        case DType::Q8: return "Q8";
        case DType::Q4: return "Q4";
        case DType::PACKED_I4: return "PACKED_I4";
        case DType::PACKED_I8: return "PACKED_I8";
        case DType::GGML_Q4_0: return "Q4_0";
        case DType::GGML_Q5_0: return "Q5_0";
        case DType::GGML_Q5_1: return "Q5_1";
        case DType::GGML_IQ4_NL: return "IQ4_NL";
        case DType::GGML_IQ4_XS: return "IQ4_XS";
        case DType::GGML_MXFP4: return "GGML_MXFP4";
        case DType::GGML_Q2_K: return "Q2_K";
        case DType::GGML_Q3_K: return "Q3_K";
        case DType::GGML_Q4_K: return "Q4_K";
        case DType::GGML_Q5_K: return "Q5_K";
        case DType::GGML_Q6_K: return "Q6_K";
    }
    return "?";
}

std::optional<DType> dtype_from_name(std::string_view name) {
    for (DType t : {DType::Q8, DType::Q4, DType::GGML_Q4_0, DType::GGML_Q5_0, DType::GGML_Q5_1, DType::GGML_IQ4_NL,
                    DType::GGML_IQ4_XS, DType::GGML_MXFP4, DType::GGML_Q2_K, DType::GGML_Q3_K, DType::GGML_Q4_K,
                    DType::GGML_Q5_K, DType::GGML_Q6_K})
        if (name == dtype_name(t)) return t;
    return dtype_from_safetensors(name);
}

std::optional<DType> dtype_from_safetensors(std::string_view name) {
    static constexpr struct { std::string_view name; DType type; } kTable[] = {
        {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"I32", DType::I32},
        {"I64", DType::I64}, {"I16", DType::I16}, {"I8", DType::I8},     {"U8", DType::U8},
        {"BOOL", DType::BOOL}, {"F64", DType::F64}, {"F8_E4M3", DType::F8_E4M3},
    };
    for (const auto &entry : kTable)
        if (entry.name == name) return entry.type;
    return std::nullopt;
}

float f16_to_f32(uint16_t h) {
    const uint32_t sign = uint32_t(h >> 15) << 31;
    const uint32_t exponent = (h >> 10) & 0x1f;
    const uint32_t mantissa = h & 0x3ff;
    float magnitude;
    if (exponent == 0) {
        magnitude = std::ldexp(float(mantissa), -24);  // zero or subnormal
    } else if (exponent == 31) {
        magnitude = mantissa ? NAN : INFINITY;
    } else {
        magnitude = std::ldexp(float(mantissa | 0x400), int(exponent) - 25);
    }
    uint32_t bits;
    std::memcpy(&bits, &magnitude, sizeof bits);
    bits |= sign;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

float fp8_e4m3_to_f32(uint8_t b) {
    const int exponent = (b >> 3) & 0xf;
    const int mantissa = b & 0x7;
    float magnitude;
    if (exponent == 0xf && mantissa == 0x7) {
        magnitude = NAN;
    } else if (exponent == 0) {
        magnitude = std::ldexp(float(mantissa), -9);  // subnormal: mantissa/8 * 2^-6
    } else {
        magnitude = std::ldexp(float(mantissa | 0x8), exponent - 10);  // (1 + m/8) * 2^(e-7)
    }
    return (b & 0x80) ? -magnitude : magnitude;
}

uint16_t f32_to_f16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    const uint16_t sign = uint16_t((bits >> 16) & 0x8000);
    const float a = std::fabs(f);
    if (std::isnan(f)) return sign | 0x7e00;
    if (a >= 65520.0f) return sign | 0x7c00;          // rounds to infinity
    if (a < 6.103515625e-05f) {                        // subnormal range: units of 2^-24
        return sign | uint16_t(std::nearbyint(a * 16777216.0f));
    }
    int exponent;
    const float m = std::frexp(a, &exponent);          // a = m * 2^exponent, m in [0.5, 1)
    uint32_t mantissa = uint32_t(std::nearbyint((m * 2.0f - 1.0f) * 1024.0f));
    int e = exponent - 1 + 15;
    if (mantissa == 1024) { mantissa = 0; ++e; }
    if (e >= 31) return sign | 0x7c00;
    return sign | uint16_t(e << 10) | uint16_t(mantissa);
}

void convert_to_f32(DType t, const void *src, float *dst, size_t n) {
    switch (t) {
        case DType::F32:
            std::memcpy(dst, src, n * sizeof(float));
            return;
        case DType::BF16: {
            const auto *s = static_cast<const uint16_t *>(src);
            for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
            return;
        }
        case DType::F16: {
            const auto *s = static_cast<const uint16_t *>(src);
            for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
            return;
        }
        case DType::F8_E4M3: {
            const auto *s = static_cast<const uint8_t *>(src);
            for (size_t i = 0; i < n; ++i) dst[i] = fp8_e4m3_to_f32(s[i]);
            return;
        }
        case DType::Q8:
        case DType::Q4:
        case DType::GGML_Q4_0: case DType::GGML_Q5_0: case DType::GGML_Q5_1: case DType::GGML_IQ4_NL:
        case DType::GGML_IQ4_XS: case DType::GGML_MXFP4:
        case DType::GGML_Q2_K: case DType::GGML_Q3_K: case DType::GGML_Q4_K: case DType::GGML_Q5_K:
        case DType::GGML_Q6_K:
            dequantize_row(t, src, dst, int64_t(n));
            return;
        default:
            fail(MST_ERR_UNSUPPORTED, "cannot convert {} to float32", dtype_name(t));
    }
}

}  // namespace mst
