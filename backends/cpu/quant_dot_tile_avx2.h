// The row x token tiles shared by the AVX2 quantized kernels (quant_kernels_avx2.cpp for
// moestream's Q8 / Q4, quant_kernels_ggml_legacy_avx2.cpp for GGUF's legacy types). Each
// of those files includes this inside its AVX2 target region and an anonymous namespace,
// so everything here is compiled for AVX2 with internal linkage (see quant_kernels_avx2.cpp
// for why no AVX2 code may have external linkage).
//
// A weight type is a decoder K with
//   static constexpr bool kHasMin;                 // whether blocks carry a minimum
//   static void decode(const uint8_t *row, int64_t b, DecodedBlock &out);
// which decodes the b-th 32-element (sub-)block of a row into 16-bit codes, a scale and a
// minimum: x = scale * code + min. The products are madd of the codes with the 16-bit
// activations (QuantizedActivation), eight 32-bit sums per block, scaled in float.
//
// The includer has included <immintrin.h>, <cstdint> and backends/cpu/quant_kernels.h
// before opening its namespace (this file includes nothing, being inside one).
#pragma once

struct DecodedBlock {
    __m256i lo, hi;  // codes of elements 0..15 and 16..31, 16-bit lanes
    float scale, min;
};

// m * s + acc with one rounding, spelled out: C++ lets GCC contract `acc += m * s` into an
// FMA in some tile shapes and not others, which made an output's bits depend on how many
// rows and tokens its kernel call took (and the fused expert path differ from the matmul).
inline float fma_scalar(float m, float s, float acc) {
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(m), _mm_set_ss(s), _mm_set_ss(acc)));
}

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// NR rows x NT tokens: each weight block decoded once serves NT tokens.
template <typename K, int NR, int NT>
inline void dot_tile(const uint8_t *w, int64_t row_bytes, int64_t n_blocks, const mst::QuantizedActivation *x,
                     int64_t ldx, float *y, int64_t ldy) {
    __m256 acc[NR][NT];
    float min_acc[NR][NT];
    for (int r = 0; r < NR; ++r)
        for (int t = 0; t < NT; ++t) {
            acc[r][t] = _mm256_setzero_ps();
            min_acc[r][t] = 0.0f;
        }
    // The next tile's bytes at this block, prefetched into L2 (quant_kernels_avx512_vnni.cpp
    // says why); row_bytes / n_blocks is a block's size, or a sub-block's average.
    const int64_t block_bytes = n_blocks > 0 ? row_bytes / n_blocks : 0;
    for (int64_t b = 0; b < n_blocks; ++b) {
        DecodedBlock wb[NR];
        for (int r = 0; r < NR; ++r)
            _mm_prefetch(reinterpret_cast<const char *>(w + (NR + r) * row_bytes + b * block_bytes), _MM_HINT_T1);
        for (int r = 0; r < NR; ++r) K::decode(w + r * row_bytes, b, wb[r]);
        for (int t = 0; t < NT; ++t) {
            const mst::QuantizedActivation &a = x[t * ldx + b];
            const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(a.q));
            const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(a.q + 16));
            for (int r = 0; r < NR; ++r) {
                const __m256i sums = _mm256_add_epi32(_mm256_madd_epi16(wb[r].lo, x0), _mm256_madd_epi16(wb[r].hi, x1));
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(wb[r].scale * a.d), acc[r][t]);
                if constexpr (K::kHasMin) min_acc[r][t] = fma_scalar(wb[r].min, a.sum, min_acc[r][t]);
            }
        }
    }
    for (int r = 0; r < NR; ++r)
        for (int t = 0; t < NT; ++t) y[t * ldy + r] = hsum(acc[r][t]) + min_acc[r][t];
}

template <typename K, int NT>
void dot_rows_tile(const uint8_t *w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks,
                   const mst::QuantizedActivation *x, int64_t ldx, float *y, int64_t ldy) {
    // Registers: 2 * NT accumulators + 2 decoded blocks (4 vectors) + 2 activations <= 16.
    int64_t r = 0;
    for (; r + 2 <= n_rows; r += 2) dot_tile<K, 2, NT>(w + r * row_bytes, row_bytes, n_blocks, x, ldx, y + r, ldy);
    for (; r < n_rows; ++r) dot_tile<K, 1, NT>(w + r * row_bytes, row_bytes, n_blocks, x, ldx, y + r, ldy);
}

// A QuantKernels::DotRowsFn for decoder K, up to 4 tokens per call.
template <typename K>
void dot_rows(const void *w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks, const mst::QuantizedActivation *x,
              int64_t ldx, int n_tok, float *y, int64_t ldy) {
    const auto *wb = static_cast<const uint8_t *>(w);
    switch (n_tok) {
        case 1: return dot_rows_tile<K, 1>(wb, row_bytes, n_rows, n_blocks, x, ldx, y, ldy);
        case 2: return dot_rows_tile<K, 2>(wb, row_bytes, n_rows, n_blocks, x, ldx, y, ldy);
        case 3: return dot_rows_tile<K, 3>(wb, row_bytes, n_rows, n_blocks, x, ldx, y, ldy);
        default: return dot_rows_tile<K, 4>(wb, row_bytes, n_rows, n_blocks, x, ldx, y, ldy);
    }
}
