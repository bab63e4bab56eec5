// AVX2 + FMA + F16C kernels (Haswell / Zen and later). The library is built for baseline
// x86-64, so this file switches the target on for its own functions only. Everything in
// the target region has internal linkage and calls no inline function from a standard
// header: an out-of-line copy of such a function compiled here could be the one the
// linker keeps, and would then run AVX2 code on a CPU without it.
#if defined(__x86_64__)

#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/cpu_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace mst {
namespace {

// Tokens that share one load of a weight (see dot_rows_tile for the register budget).
constexpr int kMaxTokens = 4;
static_assert(kMaxTokens <= CpuKernels::kMaxTokensAny);

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

struct F32 {
    using T = float;
    static __m256 load8(const float *p) { return _mm256_loadu_ps(p); }
    static float load1(const float *p) { return *p; }
};

struct BF16 {
    using T = uint16_t;
    // bfloat16 is the top half of a float32: widen to 32 bits and shift into place.
    static __m256 load8(const uint16_t *p) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    static float load1(const uint16_t *p) {
        return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(int(uint32_t(*p) << 16))));
    }
};

struct F16 {
    using T = uint16_t;
    static __m256 load8(const uint16_t *p) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
    }
    static float load1(const uint16_t *p) { return _cvtsh_ss(*p); }
};

// NR rows x NT tokens: each weight vector loaded serves NT tokens and each activation
// vector NR rows, with U independent accumulators per pair to hide the FMA latency.
template <typename L, int NR, int NT, int U>
inline void dot_block(const typename L::T *w, int64_t cols, const float *x, int64_t ldx, float *y, int64_t ldy) {
    __m256 acc[NR][NT][U];
#pragma GCC unroll 2
    for (int r = 0; r < NR; ++r)
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t)
#pragma GCC unroll 4
            for (int u = 0; u < U; ++u) acc[r][t][u] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 * U <= cols; c += 8 * U) {
#pragma GCC unroll 4
        for (int u = 0; u < U; ++u) {
            __m256 wv[NR];
#pragma GCC unroll 2
            for (int r = 0; r < NR; ++r) wv[r] = L::load8(w + r * cols + c + 8 * u);
#pragma GCC unroll 4
            for (int t = 0; t < NT; ++t) {
                const __m256 xv = _mm256_loadu_ps(x + t * ldx + c + 8 * u);
#pragma GCC unroll 2
                for (int r = 0; r < NR; ++r) acc[r][t][u] = _mm256_fmadd_ps(wv[r], xv, acc[r][t][u]);
            }
        }
    }
    for (; c + 8 <= cols; c += 8) {
#pragma GCC unroll 2
        for (int r = 0; r < NR; ++r) {
            const __m256 wv = L::load8(w + r * cols + c);
#pragma GCC unroll 4
            for (int t = 0; t < NT; ++t)
                acc[r][t][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * ldx + c), acc[r][t][0]);
        }
    }
#pragma GCC unroll 2
    for (int r = 0; r < NR; ++r)
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t) {
            __m256 s = acc[r][t][0];
#pragma GCC unroll 4
            for (int u = 1; u < U; ++u) s = _mm256_add_ps(s, acc[r][t][u]);
            float sum = hsum(s);
            for (int64_t k = c; k < cols; ++k) sum += L::load1(w + r * cols + k) * x[t * ldx + k];
            y[t * ldy + r] = sum;
        }
}

template <typename L, int NT>
void dot_rows_tile(const typename L::T *w, int64_t n_rows, int64_t cols, const float *x, int64_t ldx,
                   float *y, int64_t ldy) {
    // One token (decode) is bound by memory: one row at a time, 4 accumulators. Several
    // tokens are bound by loads and FMAs: 2 rows share each activation load. Registers:
    // NR * NT * U accumulators + NR weights + 1 activation <= 16.
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
    switch (n_tok) {
        case 1: return dot_rows_tile<L, 1>(wt, n_rows, cols, x, ldx, y, ldy);
        case 2: return dot_rows_tile<L, 2>(wt, n_rows, cols, x, ldx, y, ldy);
        case 3: return dot_rows_tile<L, 3>(wt, n_rows, cols, x, ldx, y, ldy);
        default: return dot_rows_tile<L, 4>(wt, n_rows, cols, x, ldx, y, ldy);
    }
}

void axpy(int64_t n, float a, const float *x, float *y) {
    const __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] += a * x[i];
}

// e^x for x in about [-87, 88] (outside, clamped; NaN passes through): x = n ln2 + r with
// |r| <= ln2 / 2, e^r by its degree-7 Taylor polynomial (truncation < 3e-9 relative),
// 2^n built in the exponent bits. About 2 ulp.
inline __m256 exp8(__m256 x) {
    x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x);  // NaN is the second operand: kept
    x = _mm256_min_ps(_mm256_set1_ps(88.0f), x);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // ln 2 split in two so that n * hi is exact.
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

float exp_shift_sum(float *x, int64_t n, float shift) {
    const __m256 s = _mm256_set1_ps(shift);
    __m256 sum = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float total = hsum(sum);
    if (i < n) {
        // The tail goes through the same polynomial so every element has the same error.
        alignas(32) float buf[8] = {};
        const int64_t rem = n - i;
        for (int64_t k = 0; k < rem; ++k) buf[k] = x[i + k] - shift;
        _mm256_store_ps(buf, exp8(_mm256_load_ps(buf)));
        for (int64_t k = 0; k < rem; ++k) {
            x[i + k] = buf[k];
            total += buf[k];
        }
    }
    return total;
}

constexpr CpuKernels kAvx2{
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
const CpuKernels &cpu_kernels_avx2() { return kAvx2; }
}  // namespace mst

#endif  // __x86_64__
