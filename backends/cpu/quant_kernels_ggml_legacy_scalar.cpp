// Portable kernels for the GGML legacy types: the fallback without AVX2 and the reference
// the SIMD ones are tested against. Each sub-block is decoded to its integer codes by
// core's reference decoder, then meets each token's activation block in one integer dot.
#include "backends/cpu/quant_kernels_ggml_legacy.h"

#include "core/ggml_legacy_quants.h"

namespace mst {
namespace {

constexpr int kMaxTokens = 4;

template <DType T>
void dot_rows(const void *w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks, const QuantizedActivation *x,
              int64_t ldx, int n_tok, float *y, int64_t ldy) {
    GgmlSubBlockCodes codes;
    for (int64_t r = 0; r < n_rows; ++r) {
        const auto *row = static_cast<const uint8_t *>(w) + r * row_bytes;
        float acc[kMaxTokens] = {};
        for (int64_t b = 0; b < n_blocks; ++b) {
            ggml_legacy_decode(T, row, b, codes);
            for (int t = 0; t < n_tok; ++t) {
                const QuantizedActivation &a = x[t * ldx + b];
                int32_t dot = 0;
                for (int i = 0; i < 32; ++i) dot += int32_t(codes.code[i]) * int32_t(a.q[i]);
                acc[t] += codes.scale * a.d * float(dot) + codes.min * a.sum;
            }
        }
        for (int t = 0; t < n_tok; ++t) y[t * ldy + r] = acc[t];
    }
}

constexpr GgmlLegacyKernels kScalar{
    .q4_0 = dot_rows<DType::GGML_Q4_0>,
    .q5_0 = dot_rows<DType::GGML_Q5_0>,
    .q5_1 = dot_rows<DType::GGML_Q5_1>,
    .iq4_nl = dot_rows<DType::GGML_IQ4_NL>,
    .iq4_xs = dot_rows<DType::GGML_IQ4_XS>,
    .mxfp4 = dot_rows<DType::GGML_MXFP4>,
    .max_tokens = kMaxTokens,
};

}  // namespace

const GgmlLegacyKernels &ggml_legacy_kernels_scalar() { return kScalar; }

const GgmlLegacyKernels &ggml_legacy_kernels_for(const CpuKernels &kernels) {
#if defined(__x86_64__)
    if (&kernels == &cpu_kernels_avx512()) return ggml_legacy_kernels_avx512();
    if (&kernels == &cpu_kernels_avx2()) return ggml_legacy_kernels_avx2();
#endif
    (void)kernels;
    return kScalar;
}

QuantKernels::DotRowsFn ggml_legacy_kernel(const GgmlLegacyKernels &k, DType t) {
    switch (t) {
        case DType::GGML_Q4_0: return k.q4_0;
        case DType::GGML_Q5_0: return k.q5_0;
        case DType::GGML_Q5_1: return k.q5_1;
        case DType::GGML_IQ4_NL: return k.iq4_nl;
        case DType::GGML_IQ4_XS: return k.iq4_xs;
        case DType::GGML_MXFP4: return k.mxfp4;
        default: return nullptr;
    }
}

}  // namespace mst
