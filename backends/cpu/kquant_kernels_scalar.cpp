// Portable K-quant kernels: the fallback without AVX2 and the reference the SIMD ones are
// tested against.
#include <algorithm>
#include <cmath>

#include "backends/cpu/kquant_kernels.h"

namespace mst {
namespace {

void dot(const KQuantCodes &w, const BlockQ8K *x, int64_t ldx, int n_tok, float *acc) {
    for (int t = 0; t < n_tok; ++t) {
        const BlockQ8K &a = x[t * ldx];
        int32_t isum = 0, msum = 0;
        for (int g = 0; g < 16; ++g) {
            int32_t s = 0;
            for (int i = g * 16; i < g * 16 + 16; ++i) s += int32_t(w.code[i]) * int32_t(a.q[i]);
            isum += int32_t(w.scale[g]) * s;
            msum += int32_t(w.min[g]) * int32_t(a.bsums[g]);
        }
        acc[t] += kquant_combine(w, a.d, isum, msum);
    }
}

constexpr KQuantKernels kScalar{
    .quantize_activation = quantize_activation_q8k_scalar,
    .unpack = kquant_unpack,
    .dot = dot,
    .max_tokens = 16,
};

}  // namespace

float kquant_combine(const KQuantCodes &w, float xd, int32_t isum, int32_t msum) {
    if (w.offset) return xd * w.d * float(isum - msum);
    return xd * (w.d * float(isum) - w.dmin * float(msum));
}

void quantize_activation_q8k_scalar(const float *x, int64_t cols, BlockQ8K *out) {
    for (int64_t c0 = 0, b = 0; c0 < cols; c0 += kSuperBlock, ++b) {
        const int64_t n = std::min(kSuperBlock, cols - c0);
        float amax = 0.0f;
        for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[c0 + i]));
        BlockQ8K &a = out[b];
        a.d = amax / 127.0f;
        const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        for (int64_t i = 0; i < kSuperBlock; ++i)
            a.q[i] = i < n ? int8_t(std::clamp(std::nearbyint(x[c0 + i] * inv), -127.0f, 127.0f)) : int8_t(0);
        for (int g = 0; g < 16; ++g) {
            int sum = 0;
            for (int i = 0; i < 16; ++i) sum += a.q[g * 16 + i];
            a.bsums[g] = int16_t(sum);
        }
    }
}

const KQuantKernels &kquant_kernels_scalar() { return kScalar; }

const KQuantKernels &kquant_kernels_for(const CpuKernels &kernels) {
#if defined(__x86_64__)
    if (&kernels == &cpu_kernels_avx512()) return kquant_kernels_avx512();
    if (&kernels == &cpu_kernels_avx2()) return kquant_kernels_avx2();
#endif
    (void)kernels;
    return kScalar;
}

}  // namespace mst
