// Portable quantized kernels: the fallback without AVX2 and the reference the SIMD ones
// are tested against. Integer dot products per block, scaled in float.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "backends/cpu/quant_kernels.h"
#include "core/log.h"
#include "core/quant.h"

namespace mst {
namespace {

constexpr int kMaxTokens = 4;

// To |q| <= kMax: 32767 for the 16-bit tables, 127 for the 8-bit ones.
template <int kMax>
void quantize_activation(const float *x, int64_t cols, QuantizedActivation *out) {
    constexpr float qmax = float(kMax);
    for (int64_t c0 = 0, b = 0; c0 < cols; c0 += kQuantBlock, ++b) {
        const int64_t n = std::min(kQuantBlock, cols - c0);
        float amax = 0.0f, sum = 0.0f;
        for (int64_t i = 0; i < n; ++i) {
            amax = std::max(amax, std::fabs(x[c0 + i]));
            sum += x[c0 + i];
        }
        QuantizedActivation &a = out[b];
        a.d = amax / qmax;
        a.sum = sum;
        const float inv = amax > 0.0f ? qmax / amax : 0.0f;
        for (int64_t i = 0; i < kQuantBlock; ++i)
            a.q[i] = i < n ? int16_t(std::clamp(std::nearbyint(x[c0 + i] * inv), -qmax, qmax)) : int16_t(0);
    }
    if constexpr (kMax == 127) finish_activation_blocks_q8_1(out, (cols + kQuantBlock - 1) / kQuantBlock);
}

inline float block_dot(const BlockQ8 &w, const QuantizedActivation &x) {
    int32_t acc = 0;
    for (int i = 0; i < 32; ++i) acc += int32_t(w.q[i]) * int32_t(x.q[i]);
    return half_to_float(w.d) * x.d * float(acc);
}

inline float block_dot(const BlockQ4 &w, const QuantizedActivation &x) {
    int32_t acc = 0;
    for (int i = 0; i < 16; ++i) acc += int32_t(w.q[i] & 0x0f) * x.q[i] + int32_t(w.q[i] >> 4) * x.q[i + 16];
    return half_to_float(w.d) * x.d * float(acc) + half_to_float(w.m) * x.sum;
}

template <typename Block>
void dot_rows(const void *w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks, const QuantizedActivation *x,
              int64_t ldx, int n_tok, float *y, int64_t ldy) {
    for (int64_t r = 0; r < n_rows; ++r) {
        const auto *row = reinterpret_cast<const Block *>(static_cast<const uint8_t *>(w) + r * row_bytes);
        for (int t = 0; t < n_tok; ++t) {
            float acc = 0.0f;
            for (int64_t b = 0; b < n_blocks; ++b) acc += block_dot(row[b], x[t * ldx + b]);
            y[t * ldy + r] = acc;
        }
    }
}

constexpr QuantKernels kScalar{
    .quantize_activation = quantize_activation<32767>,
    .dot_rows_q8 = dot_rows<BlockQ8>,
    .dot_rows_q4 = dot_rows<BlockQ4>,
    .max_tokens = kMaxTokens,
};

constexpr QuantKernels kScalarInt8{
    .quantize_activation = quantize_activation<127>,
    .dot_rows_q8 = dot_rows<BlockQ8>,
    .dot_rows_q4 = dot_rows<BlockQ4>,
    .max_tokens = kMaxTokens,
    .int8_activations = true,
};

}  // namespace

const QuantKernels &quant_kernels_scalar() { return kScalar; }

const QuantKernels &quant_kernels_scalar_int8() { return kScalarInt8; }

bool cpu_int8_activations_for(DType t) {
    enum class Mode { None, Low, All };
    static const Mode mode = [] {
        const char *env = std::getenv("MST_CPU_ACT_BITS");
        const std::string_view v = env ? env : "";
        if (v == "16") return Mode::None;
        if (v == "8") return Mode::All;
        if (!v.empty() && v != "q4")
            log(MST_LOG_WARN, "MST_CPU_ACT_BITS={} is not 16, 8 or q4; using the default (q4)", v);
        return Mode::Low;
    }();
    // Q4 only by default: its 8-bit VNNI kernels are faster, and the GGUF legacy types' kernels
    // are the 16-bit ones either way, where 8 bits rounded as llama.cpp's did not bring the two
    // engines' top tokens closer (bench/README.md "8-bit activations by default").
    return mode == Mode::All || (mode == Mode::Low && t == DType::Q4);
}

const QuantKernels &quant_kernels_int8_for(const CpuKernels &kernels) {
#if defined(__x86_64__)
    if (&kernels == &cpu_kernels_avx512()) return quant_kernels_avx512_int8();
    if (&kernels == &cpu_kernels_avx2()) return quant_kernels_avx2_int8();
#endif
    (void)kernels;
    return kScalarInt8;
}

const QuantKernels &quant_kernels_for(const CpuKernels &kernels, DType t) {
    return cpu_int8_activations_for(t) ? quant_kernels_int8_for(kernels) : quant_kernels_for(kernels);
}

const QuantKernels &quant_kernels_for(const CpuKernels &kernels) {
#if defined(__x86_64__)
    if (&kernels == &cpu_kernels_avx512()) return quant_kernels_avx512();
    if (&kernels == &cpu_kernels_avx2()) return quant_kernels_avx2();
#endif
    (void)kernels;
    return kScalar;
}

}  // namespace mst
