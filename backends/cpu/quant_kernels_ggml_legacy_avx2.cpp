// AVX2 kernels for the GGML legacy types. As in quant_kernels_avx2.cpp, the target is
// switched on for this file's own functions only, and everything inside the target region
// has internal linkage and calls only intrinsics.
//
// A sub-block's 32 codes are built as signed bytes in two 16-byte halves (elements 0..15
// from the low nibbles, 16..31 from the high ones): a nibble goes through a 16-entry
// pshufb table (Q4_0's q - 8, IQ4's non-linear levels, e2m1 doubled), Q5's fifth bits are
// spread from qh onto bytes by a shuffle and a compare. The bytes widen to 16-bit lanes
// and madd with the 16-bit activations, as for moestream's Q8 / Q4.
#if defined(__x86_64__)

#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/quant_kernels_ggml_legacy.h"
#include "core/ggml_legacy_quants.h"

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

inline uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

inline uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

// A decoded sub-block: codes of elements 0..15 and 16..31 in 16-bit lanes, scale, minimum.
struct SubBlock {
    __m256i lo, hi;
    float scale, min;
};

inline __m128i nibble_table(const int8_t *values) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i *>(values));
}

// The nibbles of 16 bytes as two vectors of 16 byte-sized indices.
inline void split_nibbles(const uint8_t *qs, __m128i &lo, __m128i &hi) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i *>(qs));
    const __m128i mask = _mm_set1_epi8(0x0f);
    lo = _mm_and_si128(packed, mask);
    hi = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
}

inline void widen(__m128i lo, __m128i hi, SubBlock &out) {
    out.lo = _mm256_cvtepi8_epi16(lo);
    out.hi = _mm256_cvtepi8_epi16(hi);
}

// Nibble-table types: codes = table[nibble].
inline void decode_table(const uint8_t *qs, __m128i table, SubBlock &out) {
    __m128i lo, hi;
    split_nibbles(qs, lo, hi);
    widen(_mm_shuffle_epi8(table, lo), _mm_shuffle_epi8(table, hi), out);
}

// 0x10 in byte j where bit j of the 16 bits `bits` is set.
inline __m128i fifth_bits(uint32_t bits) {
    const __m128i spread = _mm_shuffle_epi8(_mm_set1_epi16(int16_t(bits)),
                                            _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
    const __m128i select = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
    const __m128i set = _mm_cmpeq_epi8(_mm_and_si128(spread, select), select);
    return _mm_and_si128(set, _mm_set1_epi8(0x10));
}

// Q5: nibble | fifth bit << 4, minus `offset` (16 for Q5_0, 0 for Q5_1).
inline void decode_q5(const uint8_t *qh, const uint8_t *qs, int8_t offset, SubBlock &out) {
    const uint32_t high = load_u32(qh);
    __m128i lo, hi;
    split_nibbles(qs, lo, hi);
    const __m128i off = _mm_set1_epi8(offset);
    lo = _mm_sub_epi8(_mm_or_si128(lo, fifth_bits(high & 0xffffu)), off);
    hi = _mm_sub_epi8(_mm_or_si128(hi, fifth_bits(high >> 16)), off);
    widen(lo, hi, out);
}

constexpr int8_t kQ4_0Values[16] = {-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7};

struct Q4_0 {
    static constexpr bool kHasMin = false;
    static void decode(const uint8_t *row, int64_t b, SubBlock &out) {
        const uint8_t *block = row + b * 18;
        decode_table(block + 2, nibble_table(kQ4_0Values), out);
        out.scale = _cvtsh_ss(load_u16(block));
        out.min = 0.0f;
    }
};

struct Q5_0 {
    static constexpr bool kHasMin = false;
    static void decode(const uint8_t *row, int64_t b, SubBlock &out) {
        const uint8_t *block = row + b * 22;
        decode_q5(block + 2, block + 6, 16, out);
        out.scale = _cvtsh_ss(load_u16(block));
        out.min = 0.0f;
    }
};

struct Q5_1 {
    static constexpr bool kHasMin = true;
    static void decode(const uint8_t *row, int64_t b, SubBlock &out) {
        const uint8_t *block = row + b * 24;
        decode_q5(block + 4, block + 8, 0, out);
        out.scale = _cvtsh_ss(load_u16(block));
        out.min = _cvtsh_ss(load_u16(block + 2));
    }
};

struct Iq4Nl {
    static constexpr bool kHasMin = false;
    static void decode(const uint8_t *row, int64_t b, SubBlock &out) {
        const uint8_t *block = row + b * 18;
        decode_table(block + 2, nibble_table(kIq4NlValues), out);
        out.scale = _cvtsh_ss(load_u16(block));
        out.min = 0.0f;
    }
};

struct Iq4Xs {
    static constexpr bool kHasMin = false;
    static void decode(const uint8_t *row, int64_t b, SubBlock &out) {
        const uint8_t *block = row + (b / 8) * 136;
        const int s = int(b % 8);
        const int ls = ((block[4 + s / 2] >> (4 * (s % 2))) & 0x0f) | (((load_u16(block + 2) >> (2 * s)) & 3) << 4);
        decode_table(block + 8 + 16 * s, nibble_table(kIq4NlValues), out);
        out.scale = _cvtsh_ss(load_u16(block)) * float(ls - 32);
        out.min = 0.0f;
    }
};

struct Mxfp4 {
    static constexpr bool kHasMin = false;
    static void decode(const uint8_t *row, int64_t b, SubBlock &out) {
        const uint8_t *block = row + b * 17;
        decode_table(block + 1, nibble_table(kMxfp4DoubledValues), out);
        // 2^(e - 128), as ggml_e8m0_half_to_float computes it (a header function, so not called here).
        const uint32_t e = block[0];
        const uint32_t bits = e >= 2 ? (e - 1) << 23 : 0x00200000u << e;
        __builtin_memcpy(&out.scale, &bits, sizeof bits);
        out.min = 0.0f;
    }
};

// NR rows x NT tokens: each sub-block decoded once serves NT tokens.
template <typename K, int NR, int NT>
inline void dot_tile(const uint8_t *w, int64_t row_bytes, int64_t n_blocks, const QuantizedActivation *x,
                     int64_t ldx, float *y, int64_t ldy) {
    __m256 acc[NR][NT];
    float min_acc[NR][NT];
    for (int r = 0; r < NR; ++r)
        for (int t = 0; t < NT; ++t) {
            acc[r][t] = _mm256_setzero_ps();
            min_acc[r][t] = 0.0f;
        }
    for (int64_t b = 0; b < n_blocks; ++b) {
        SubBlock sb[NR];
        for (int r = 0; r < NR; ++r) K::decode(w + r * row_bytes, b, sb[r]);
        for (int t = 0; t < NT; ++t) {
            const QuantizedActivation &a = x[t * ldx + b];
            const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(a.q));
            const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(a.q + 16));
            for (int r = 0; r < NR; ++r) {
                const __m256i sums = _mm256_add_epi32(_mm256_madd_epi16(sb[r].lo, x0), _mm256_madd_epi16(sb[r].hi, x1));
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(sb[r].scale * a.d), acc[r][t]);
                if constexpr (K::kHasMin) min_acc[r][t] += sb[r].min * a.sum;
            }
        }
    }
    for (int r = 0; r < NR; ++r)
        for (int t = 0; t < NT; ++t) y[t * ldy + r] = hsum(acc[r][t]) + min_acc[r][t];
}

template <typename K, int NT>
void dot_rows_tile(const uint8_t *w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks,
                   const QuantizedActivation *x, int64_t ldx, float *y, int64_t ldy) {
    // Registers: 2 * NT accumulators + 2 decoded sub-blocks (4 vectors) + 2 activations <= 16.
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

constexpr GgmlLegacyKernels kAvx2{
    .q4_0 = dot_rows<Q4_0>,
    .q5_0 = dot_rows<Q5_0>,
    .q5_1 = dot_rows<Q5_1>,
    .iq4_nl = dot_rows<Iq4Nl>,
    .iq4_xs = dot_rows<Iq4Xs>,
    .mxfp4 = dot_rows<Mxfp4>,
    .max_tokens = kMaxTokens,
};

}  // namespace
}  // namespace mst

#pragma GCC pop_options

namespace mst {
const GgmlLegacyKernels &ggml_legacy_kernels_avx2() { return kAvx2; }
}  // namespace mst

#endif  // __x86_64__
