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

constexpr int kMaxTokens = 4;

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// One full block of 32 floats (the caller pads a partial one with zeros).
inline void quantize_activation_block(const float *x, QuantizedActivation &out) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps(), sum = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        amax = _mm256_max_ps(amax, _mm256_and_ps(v[k], abs_mask));
        sum = _mm256_add_ps(sum, v[k]);
    }
    const float m = hmax(amax);
    out.d = m / 32767.0f;
    out.sum = hsum(sum);
    const __m256 inv = _mm256_set1_ps(m > 0.0f ? 32767.0f / m : 0.0f);
    // cvtps rounds to nearest even, as the scalar kernel's nearbyint does.
    __m256i i[4];
    for (int k = 0; k < 4; ++k) i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], inv));
    // packs works within 128-bit lanes; the permute puts the 64-bit groups back in order.
    for (int k = 0; k < 2; ++k)
        _mm256_storeu_si256(reinterpret_cast<__m256i *>(out.q + 16 * k),
                            _mm256_permute4x64_epi64(_mm256_packs_epi32(i[2 * k], i[2 * k + 1]), 0xd8));
}

void quantize_activation(const float *x, int64_t cols, QuantizedActivation *out) {
    int64_t c = 0, b = 0;
    for (; c + 32 <= cols; c += 32, ++b) quantize_activation_block(x + c, out[b]);
    if (c < cols) {
        alignas(32) float tail[32] = {};
        for (int64_t k = 0; k < cols - c; ++k) tail[k] = x[c + k];
        quantize_activation_block(tail, out[b]);
    }
}

// A block's 32 codes as two vectors of sixteen 16-bit lanes (elements 0..15, 16..31).
struct Codes {
    __m256i lo, hi;
};

struct Q8 {
    using Block = BlockQ8;
    static constexpr bool kHasMin = false;
    static Codes codes(const BlockQ8 &b) {
        const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.q));
        const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.q + 16));
        return {_mm256_cvtepi8_epi16(lo), _mm256_cvtepi8_epi16(hi)};
    }
    static float min(const BlockQ8 &) { return 0.0f; }
};

struct Q4 {
    using Block = BlockQ4;
    static constexpr bool kHasMin = true;
    static Codes codes(const BlockQ4 &b) {
        // Widened first, one byte per 16-bit lane: its low nibble is element j, its high
        // nibble element j + 16. One widening (a shuffle-port instruction, the scarce
        // one in this loop) instead of two.
        const __m256i bytes = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(b.q)));
        return {_mm256_and_si256(bytes, _mm256_set1_epi16(0x0f)), _mm256_srli_epi16(bytes, 4)};
    }
    static float min(const BlockQ4 &b) { return _cvtsh_ss(b.m); }
};

// NR rows x NT tokens: each weight block decoded once serves NT tokens.
// NR rows x NT tokens: each weight block decoded once serves NT tokens.
template <typename K, int NR, int NT>
inline void dot_tile(const uint8_t *w, int64_t row_bytes, int64_t n_blocks, const QuantizedActivation *x,
                     int64_t ldx, float *y, int64_t ldy) {
    using Block = typename K::Block;
    __m256 acc[NR][NT];
    float min_acc[NR][NT];
    for (int r = 0; r < NR; ++r)
        for (int t = 0; t < NT; ++t) {
            acc[r][t] = _mm256_setzero_ps();
            min_acc[r][t] = 0.0f;
        }
    for (int64_t b = 0; b < n_blocks; ++b) {
        Codes wv[NR];
        float wd[NR], wm[NR];
        for (int r = 0; r < NR; ++r) {
            const Block &blk = reinterpret_cast<const Block *>(w + r * row_bytes)[b];
            wv[r] = K::codes(blk);
            wd[r] = _cvtsh_ss(blk.d);
            wm[r] = K::min(blk);
        }
        for (int t = 0; t < NT; ++t) {
            const QuantizedActivation &a = x[t * ldx + b];
            const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(a.q));
            const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(a.q + 16));
            for (int r = 0; r < NR; ++r) {
                const __m256i sums = _mm256_add_epi32(_mm256_madd_epi16(wv[r].lo, x0), _mm256_madd_epi16(wv[r].hi, x1));
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(wd[r] * a.d), acc[r][t]);
                if constexpr (K::kHasMin) min_acc[r][t] += wm[r] * a.sum;
            }
        }
    }
    for (int r = 0; r < NR; ++r)
        for (int t = 0; t < NT; ++t) y[t * ldy + r] = hsum(acc[r][t]) + min_acc[r][t];
}

template <typename K, int NT>
void dot_rows_tile(const uint8_t *w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks,
                   const QuantizedActivation *x, int64_t ldx, float *y, int64_t ldy) {
    // Registers: 2 * NT accumulators + 2 weight blocks (4 vectors) + 2 activations <= 16.
    int64_t r = 0;
    for (; r + 2 <= n_rows; r += 2) dot_tile<K, 2, NT>(w + r * row_bytes, row_bytes, n_blocks, x, ldx, y + r, ldy);
    for (; r < n_rows; ++r) dot_tile<K, 1, NT>(w + r * row_bytes, row_bytes, n_blocks, x, ldx, y + r, ldy);
}

template <typename K>
void dot_rows(const void *w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks, const QuantizedActivation *x,
              int64_t ldx, int n_tok, float *y, int64_t ldy) {
    const auto *wb = static_cast<const uint8_t *>(w);
    switch (n_tok) {
        case 1: return dot_rows_tile<K, 1>(wb, row_bytes, n_rows, n_blocks, x, ldx, y, ldy);
        case 2: return dot_rows_tile<K, 2>(wb, row_bytes, n_rows, n_blocks, x, ldx, y, ldy);
        case 3: return dot_rows_tile<K, 3>(wb, row_bytes, n_rows, n_blocks, x, ldx, y, ldy);
        default: return dot_rows_tile<K, 4>(wb, row_bytes, n_rows, n_blocks, x, ldx, y, ldy);
    }
}

constexpr QuantKernels kAvx2{
    .quantize_activation = quantize_activation,
    .dot_rows_q8 = dot_rows<Q8>,
    .dot_rows_q4 = dot_rows<Q4>,
    .max_tokens = kMaxTokens,
};

}  // namespace
}  // namespace mst

#pragma GCC pop_options

namespace mst {
const QuantKernels &quant_kernels_avx2() { return kAvx2; }
}  // namespace mst

#endif  // __x86_64__
