// matmul on MXFP4 weights (core/mxfp4.h): y[t][r] = sum_c w[r][c] * x[t][c]. Each block
// of 32 weights is decoded once, in registers, and used for every token of a tile; no
// float copy of the matrix is ever made, so a streamed expert is read at 4.25 bits per
// weight and computed on as it is.
//
// Values are decoded doubled (e2m1 x 2 is an integer: 0, 1, 2, 3, 4, 6, 8, 12) and the
// block's scale halved, so the AVX2 path decodes with one byte shuffle and integer
// widening; 2^(e - 128) is exact in float32 for every scale byte.
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/row_block_loop.h"
#include "core/mxfp4.h"

namespace mst {
namespace {

constexpr int kTokenTile = 4;

// half_scales[e] = 2^(e - 128): the block scale for doubled values.
using HalfScales = std::array<float, 256>;

const HalfScales &half_scales() {
    static const HalfScales table = [] {
        HalfScales t{};
        for (int e = 0; e < 256; ++e) t[size_t(e)] = std::ldexp(1.0f, e - 128);
        return t;
    }();
    return table;
}

// For rows r < n_rows of the tile (blocks and scales at row 0 of it) and tokens t < n_tok:
// y[t * ldy + r] = sum_c w[r][c] * x[t * ldx + c].
using Mxfp4RowsFn = void (*)(const uint8_t *blocks, const uint8_t *scales, int64_t n_rows, int64_t cols,
                             const float *x, int64_t ldx, int n_tok, float *y, int64_t ldy, const float *half_scale);

void mxfp4_rows_scalar(const uint8_t *blocks, const uint8_t *scales, int64_t n_rows, int64_t cols, const float *x,
                       int64_t ldx, int n_tok, float *y, int64_t ldy, const float *half_scale) {
    static constexpr float kDoubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    const int64_t n_blocks = cols / kMxfp4BlockSize;
    for (int64_t r = 0; r < n_rows; ++r) {
        const uint8_t *rb = blocks + r * mxfp4_row_bytes(cols);
        const uint8_t *rs = scales + r * n_blocks;
        float acc[kTokenTile] = {};
        for (int64_t g = 0; g < n_blocks; ++g) {
            float w[kMxfp4BlockSize];
            for (int j = 0; j < kMxfp4BlockBytes; ++j) {
                const uint8_t b = rb[g * kMxfp4BlockBytes + j];
                w[2 * j] = kDoubled[b & 0x0f];
                w[2 * j + 1] = kDoubled[b >> 4];
            }
            const float s = half_scale[rs[g]];
            for (int t = 0; t < n_tok; ++t) {
                const float *xt = x + t * ldx + g * kMxfp4BlockSize;
                float sum = 0.0f;
                for (int i = 0; i < kMxfp4BlockSize; ++i) sum += w[i] * xt[i];
                acc[t] += sum * s;
            }
        }
        for (int t = 0; t < n_tok; ++t) y[t * ldy + r] = acc[t];
    }
}

}  // namespace
}  // namespace mst

#if defined(__x86_64__)
// The AVX2 path. Everything in the target region has internal linkage and calls no
// inline function from a standard header (see kernels_avx2.cpp for why).
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace mst {
namespace {

#include "backends/cpu/hsum_avx2.h"

// The 32 doubled values of one block as four vectors of 8, in element order.
inline void decode_block(const uint8_t *b, __m256 out[4]) {
    const __m128i lut = _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
    const __m128i mask = _mm_set1_epi8(0x0f);
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b));
    const __m128i even = _mm_shuffle_epi8(lut, _mm_and_si128(bytes, mask));                     // elements 2j
    const __m128i odd = _mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(bytes, 4), mask));  // elements 2j + 1
    const __m128i first = _mm_unpacklo_epi8(even, odd);   // elements 0..15
    const __m128i second = _mm_unpackhi_epi8(even, odd);  // elements 16..31
    out[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(first));
    out[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(first, 8)));
    out[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(second));
    out[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(second, 8)));
}

template <int NT>
void rows_avx2(const uint8_t *blocks, const uint8_t *scales, int64_t n_rows, int64_t cols, const float *x,
               int64_t ldx, float *y, int64_t ldy, const float *half_scale) {
    const int64_t n_blocks = cols / kMxfp4BlockSize;
    for (int64_t r = 0; r < n_rows; ++r) {
        const uint8_t *rb = blocks + r * n_blocks * kMxfp4BlockBytes;
        const uint8_t *rs = scales + r * n_blocks;
        __m256 acc[NT];
        for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
        for (int64_t g = 0; g < n_blocks; ++g) {
            __m256 w[4];
            decode_block(rb + g * kMxfp4BlockBytes, w);
            const __m256 s = _mm256_set1_ps(half_scale[rs[g]]);
            for (int t = 0; t < NT; ++t) {
                const float *xt = x + t * ldx + g * kMxfp4BlockSize;
                __m256 block = _mm256_mul_ps(w[0], _mm256_loadu_ps(xt));
                block = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(xt + 8), block);
                block = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(xt + 16), block);
                block = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(xt + 24), block);
                acc[t] = _mm256_fmadd_ps(block, s, acc[t]);
            }
        }
        for (int t = 0; t < NT; ++t) y[t * ldy + r] = hsum8(acc[t]);
    }
}

void mxfp4_rows_avx2(const uint8_t *blocks, const uint8_t *scales, int64_t n_rows, int64_t cols, const float *x,
                     int64_t ldx, int n_tok, float *y, int64_t ldy, const float *half_scale) {
    switch (n_tok) {
        case 1: rows_avx2<1>(blocks, scales, n_rows, cols, x, ldx, y, ldy, half_scale); break;
        case 2: rows_avx2<2>(blocks, scales, n_rows, cols, x, ldx, y, ldy, half_scale); break;
        case 3: rows_avx2<3>(blocks, scales, n_rows, cols, x, ldx, y, ldy, half_scale); break;
        default: rows_avx2<kTokenTile>(blocks, scales, n_rows, cols, x, ldx, y, ldy, half_scale); break;
    }
}

}  // namespace
}  // namespace mst

#pragma GCC pop_options
#endif  // __x86_64__

namespace mst {

void CpuBackend::matmul_mxfp4(const WeightView &w, const float *x, float *y, int64_t n_tokens) {
    const int64_t rows = w.rows, cols = w.cols;
    if (rows == 0 || n_tokens == 0) return;
    if (cols == 0) {
        std::fill(y, y + rows * n_tokens, 0.0f);
        return;
    }

    Mxfp4RowsFn rows_fn = mxfp4_rows_scalar;
#if defined(__x86_64__)
    if (isa_ != CpuIsa::Scalar) rows_fn = mxfp4_rows_avx2;
#endif
    const float *half_scale = half_scales().data();
    const auto *blocks = static_cast<const uint8_t *>(w.data);
    for_each_row_block(rows, cols, n_tokens, n_threads_, [&](int64_t r0, int64_t nr) {
        for (int64_t t = 0; t < n_tokens; t += kTokenTile)
            rows_fn(blocks + r0 * mxfp4_row_bytes(cols), w.scales + r0 * mxfp4_row_scales(cols), nr, cols,
                    x + t * cols, cols, int(std::min<int64_t>(kTokenTile, n_tokens - t)), y + t * rows + r0, rows,
                    half_scale);
    });
}

}  // namespace mst
