// AVX-512 (F + BW + VL) kernels (Skylake-SP, Ice Lake, Zen 4 and later). As in
// kernels_avx2.cpp the target is switched on for this file's own functions only, all of
// internal linkage, calling no inline function from a standard header. Row tails use
// masked loads instead of a scalar loop.
#if defined(__x86_64__)

#include "backends/cpu/avx512_intrinsics.h"

#include <cstdint>

#include "backends/cpu/cpu_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")

namespace mst {
namespace {

#include "backends/cpu/token_tile_dispatch.h"

// Tokens that share one load of a weight (see dot_rows_tile for the register budget).
constexpr int kMaxTokens = 8;
static_assert(kMaxTokens <= CpuKernels::kMaxTokensAny);

inline __mmask16 tail_mask(int64_t rem) { return __mmask16((1u << rem) - 1u); }

struct F32 {
    using T = float;
    static __m512 load16(const float *p) { return _mm512_loadu_ps(p); }
    static __m512 load16(const float *p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};

struct BF16 {
    using T = uint16_t;
    // bfloat16 is the top half of a float32: widen to 32 bits and shift into place.
    static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
    static __m512 load16(const uint16_t *p) { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p))); }
    static __m512 load16(const uint16_t *p, __mmask16 m) { return widen(_mm256_maskz_loadu_epi16(m, p)); }
};

struct F16 {
    using T = uint16_t;
    static __m512 load16(const uint16_t *p) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
    }
    static __m512 load16(const uint16_t *p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
};

// NR rows x NT tokens, as in kernels_avx2.cpp; the column tail is one masked step.
template <typename L, int NR, int NT, int U>
inline void dot_block(const typename L::T *w, int64_t cols, const float *x, int64_t ldx, float *y, int64_t ldy) {
    __m512 acc[NR][NT][U];
#pragma GCC unroll 2
    for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t)
#pragma GCC unroll 4
            for (int u = 0; u < U; ++u) acc[r][t][u] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 16 * U <= cols; c += 16 * U) {
#pragma GCC unroll 4
        for (int u = 0; u < U; ++u) {
            __m512 wv[NR];
#pragma GCC unroll 2
            for (int r = 0; r < NR; ++r) wv[r] = L::load16(w + r * cols + c + 16 * u);
#pragma GCC unroll 8
            for (int t = 0; t < NT; ++t) {
                const __m512 xv = _mm512_loadu_ps(x + t * ldx + c + 16 * u);
#pragma GCC unroll 2
                for (int r = 0; r < NR; ++r) acc[r][t][u] = _mm512_fmadd_ps(wv[r], xv, acc[r][t][u]);
            }
        }
    }
    for (; c + 16 <= cols; c += 16) {
#pragma GCC unroll 2
        for (int r = 0; r < NR; ++r) {
            const __m512 wv = L::load16(w + r * cols + c);
#pragma GCC unroll 8
            for (int t = 0; t < NT; ++t)
                acc[r][t][0] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + t * ldx + c), acc[r][t][0]);
        }
    }
    if (c < cols) {
        const __mmask16 m = tail_mask(cols - c);
#pragma GCC unroll 2
        for (int r = 0; r < NR; ++r) {
            const __m512 wv = L::load16(w + r * cols + c, m);
#pragma GCC unroll 8
            for (int t = 0; t < NT; ++t)
                acc[r][t][0] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + t * ldx + c), acc[r][t][0]);
        }
    }
#pragma GCC unroll 2
    for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
            __m512 s = acc[r][t][0];
#pragma GCC unroll 4
            for (int u = 1; u < U; ++u) s = _mm512_add_ps(s, acc[r][t][u]);
            y[t * ldy + r] = _mm512_reduce_add_ps(s);
        }
}

template <typename L, int NT>
void dot_rows_tile(const typename L::T *w, int64_t n_rows, int64_t cols, const float *x, int64_t ldx,
                   float *y, int64_t ldy) {
    // As in kernels_avx2.cpp: NR * NT * U accumulators + NR weights + 1 activation <= 32.
    constexpr int NR = NT == 1 ? 1 : 2;
    constexpr int U = NT == 1 ? 4 : NT == 2 ? 2 : 1;
    int64_t r = 0;
    for (; r + NR <= n_rows; r += NR) dot_block<L, NR, NT, U>(w + r * cols, cols, x, ldx, y + r, ldy);
    for (; r < n_rows; ++r) dot_block<L, 1, NT, U>(w + r * cols, cols, x, ldx, y + r, ldy);
}

template <typename L>
void dot_rows(const void *w, int64_t n_rows, int64_t cols, const float *x, int64_t ldx, int n_tok,
              float *y, int64_t ldy) {
    const auto *wt = static_cast<const typename L::T *>(w);
    dispatch_token_tile(n_tok, [&](auto nt) { dot_rows_tile<L, decltype(nt)::value>(wt, n_rows, cols, x, ldx, y, ldy); });
}

void axpy(int64_t n, float a, const float *x, float *y) {
    const __m512 av = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

// e^x as in kernels_avx2.cpp's exp8: n = round(x / ln2), degree-7 Taylor polynomial of
// e^r, then scalef multiplies by 2^n.
inline __m512 exp16(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-87.0f), x);  // NaN is the second operand: kept
    x = _mm512_min_ps(_mm512_set1_ps(88.0f), x);
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

float exp_shift_sum(float *x, int64_t n, float shift) {
    const __m512 s = _mm512_set1_ps(shift);
    __m512 sum = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), s));
        _mm512_storeu_ps(x + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s));
        _mm512_mask_storeu_ps(x + i, m, e);
        sum = _mm512_mask_add_ps(sum, m, sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

constexpr CpuKernels kAvx512{
    .dot_rows_f32 = dot_rows<F32>,
    .dot_rows_f16 = dot_rows<F16>,
    .dot_rows_bf16 = dot_rows<BF16>,
    .max_tokens = kMaxTokens,
    .axpy = axpy,
    .exp_shift_sum = exp_shift_sum,
};

}  // namespace
}  // namespace mst

#pragma GCC pop_options

namespace mst {
const CpuKernels &cpu_kernels_avx512() { return kAvx512; }
}  // namespace mst

#endif  // __x86_64__
