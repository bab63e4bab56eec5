// AVX2 quantized kernels. As in kernels_avx2.cpp, the target is switched on for this
// file's own functions only, and everything inside the target region has internal
// linkage and calls only intrinsics (no inline function from a header, whose AVX2 copy
// the linker could keep for callers on CPUs without AVX2).
//
// A weight block meets an activation block as sixteen-bit products: the 32 weight codes
// widen to two vectors of 16-bit lanes, and madd multiplies them with the 16-bit
// activations and adds pairs into eight 32-bit sums. No sum can overflow: 32 products of
// at most 127 (or 15) x 32767 stay below 2^31.
#if defined(__x86_64__)

#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/quant_kernels.h"
#include "core/quant.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace mst {
namespace {

#include "backends/cpu/quant_dot_tile_avx2.h"

constexpr int kMaxTokens = 4;

inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// One full block of 32 floats (the caller pads a partial one with zeros), to |q| <= kMax.
template <int kMax>
inline void quantize_activation_block(const float *x, QuantizedActivation &out) {
    constexpr float qmax = float(kMax);
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps(), sum = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        amax = _mm256_max_ps(amax, _mm256_and_ps(v[k], abs_mask));
        sum = _mm256_add_ps(sum, v[k]);
    }
    const float m = hmax(amax);
    out.d = m / qmax;
    out.sum = hsum(sum);
    const __m256 inv = _mm256_set1_ps(m > 0.0f ? qmax / m : 0.0f);
    // cvtps rounds to nearest even, as the scalar kernel's nearbyint does.
    __m256i i[4];
    for (int k = 0; k < 4; ++k) i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], inv));
    // packs works within 128-bit lanes; the permute puts the 64-bit groups back in order.
    for (int k = 0; k < 2; ++k)
        _mm256_storeu_si256(reinterpret_cast<__m256i *>(out.q + 16 * k),
                            _mm256_permute4x64_epi64(_mm256_packs_epi32(i[2 * k], i[2 * k + 1]), 0xd8));
}

template <int kMax>
void quantize_activation(const float *x, int64_t cols, QuantizedActivation *out) {
    int64_t c = 0, b = 0;
    for (; c + 32 <= cols; c += 32, ++b) quantize_activation_block<kMax>(x + c, out[b]);
    if (c < cols) {
        alignas(32) float tail[32] = {};
        for (int64_t k = 0; k < cols - c; ++k) tail[k] = x[c + k];
        quantize_activation_block<kMax>(tail, out[b]);
    }
    if constexpr (kMax == 127) finish_activation_blocks_q8_1(out, (cols + 31) / 32);
}

struct Q8 {
    static constexpr bool kHasMin = false;
    static void decode(const uint8_t *row, int64_t b, DecodedBlock &out) {
        const BlockQ8 &blk = reinterpret_cast<const BlockQ8 *>(row)[b];
        out.lo = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(blk.q)));
        out.hi = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(blk.q + 16)));
        out.scale = _cvtsh_ss(blk.d);
        out.min = 0.0f;
    }
};

struct Q4 {
    static constexpr bool kHasMin = true;
    static void decode(const uint8_t *row, int64_t b, DecodedBlock &out) {
        const BlockQ4 &blk = reinterpret_cast<const BlockQ4 *>(row)[b];
        // Widened first, one byte per 16-bit lane: its low nibble is element j, its high
        // nibble element j + 16. One widening (a shuffle-port instruction, the scarce
        // one in this loop) instead of two.
        const __m256i bytes = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(blk.q)));
        out.lo = _mm256_and_si256(bytes, _mm256_set1_epi16(0x0f));
        out.hi = _mm256_srli_epi16(bytes, 4);
        out.scale = _cvtsh_ss(blk.d);
        out.min = _cvtsh_ss(blk.m);
    }
};

constexpr QuantKernels kAvx2{
    .quantize_activation = quantize_activation<32767>,
    .dot_rows_q8 = dot_rows<Q8>,
    .dot_rows_q4 = dot_rows<Q4>,
    .max_tokens = kMaxTokens,
};

// 8-bit activations through the same 16-bit madd kernels: the values the 8-bit VNNI
// kernels see, without their speed (a maddubs kernel is not written yet).
constexpr QuantKernels kAvx2Int8{
    .quantize_activation = quantize_activation<127>,
    .dot_rows_q8 = dot_rows<Q8>,
    .dot_rows_q4 = dot_rows<Q4>,
    .max_tokens = kMaxTokens,
    .int8_activations = true,
};

}  // namespace
}  // namespace mst

#pragma GCC pop_options

namespace mst {
const QuantKernels &quant_kernels_avx2() { return kAvx2; }
const QuantKernels &quant_kernels_avx2_int8() { return kAvx2Int8; }
}  // namespace mst

#endif  // __x86_64__
