// The 8-bit activation blocks as llama.cpp's CPU backend makes them for the same weight
// types, so that an 8-bit product here rounds as llama.cpp's does on the same GGUF:
//   - Q8_0 / Q8_1 (the partners of Q4_0, Q5_0, IQ4_NL, MXFP4, Q8_0 and of Q4_1, Q5_1): 32
//     values, q = round(x * 127 / amax), the scale amax / 127 stored as f16, and for Q8_1 the
//     block's sum as f16(scale * sum(q)), which the weights' minimum term multiplies;
//   - Q8_K (the partner of IQ4_XS): one float scale per 256 values.
// The 8-bit tables' quantizers make the 32-value blocks and finish them here, so the SIMD
// and scalar tables give the same blocks. Q4 takes them by default, the other types under
// MST_CPU_ACT_BITS=8 (cpu_int8_activations_for): the same rounding did not make the two
// engines' top tokens agree more often (bench/README.md "8-bit activations by default").
#include <algorithm>
#include <cmath>

#include "backends/cpu/quant_kernels.h"
#include "core/quant.h"

namespace mst {
namespace {

float round_to_f16(float v) { return half_to_float(float_to_half(v)); }

// 256 values per Q8_K super-block.
constexpr int64_t kSuperBlock = 256;

}  // namespace

void finish_activation_blocks_q8_1(QuantizedActivation *blocks, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; ++b) {
        QuantizedActivation &a = blocks[b];
        int32_t sum_q = 0;
        for (int i = 0; i < 32; ++i) sum_q += a.q[i];
        // llama.cpp takes the sum with the unrounded scale, then rounds both to f16.
        a.sum = round_to_f16(a.d * float(sum_q));
        a.d = round_to_f16(a.d);
    }
}

void quantize_activation_q8_k(const float *x, int64_t cols, QuantizedActivation *out) {
    for (int64_t c0 = 0, b = 0; c0 < cols; c0 += kSuperBlock) {
        const int64_t n = std::min(kSuperBlock, cols - c0);
        float amax = 0.0f;
        for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[c0 + i]));
        // As ggml: the scale is the reciprocal of the float 127 / amax, not amax / 127.
        const float iscale = amax > 0.0f ? 127.0f / amax : 0.0f;
        const float d = amax > 0.0f ? 1.0f / iscale : 0.0f;
        for (int64_t s = 0; s < n; s += kQuantBlock, ++b) {
            QuantizedActivation &a = out[b];
            int32_t sum_q = 0;
            for (int64_t i = 0; i < kQuantBlock; ++i) {
                const int64_t k = s + i;
                a.q[i] = k < n ? int16_t(std::min(127.0f, std::nearbyint(iscale * x[c0 + k]))) : int16_t(0);
                sum_q += a.q[i];
            }
            a.d = d;
            a.sum = d * float(sum_q);
        }
    }
}

QuantizeActivationFn activation_quantizer(const QuantKernels &kernels, DType t) {
    return kernels.int8_activations && t == DType::GGML_IQ4_XS ? quantize_activation_q8_k : kernels.quantize_activation;
}

}  // namespace mst
