// y = W x for FP8 E4M3 weights with per-block float32 scales. The weights stream from
// memory at one byte each. For a few tokens (decode, and the few tokens an expert gets)
// the SIMD path decodes them in registers inside the dot product, scaling each block's
// partial sum. For more tokens a thread widens a few rows at a time to float32 (scale
// applied) into a buffer that stays in L2 and runs the ISA's float32 dot kernel over it
// for every token, so the decoding is paid once per row, not once per token.
#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/parallel_for.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace mst {
namespace {

// Widened rows per thread: small enough to stay in L2 while every token passes over them.
constexpr int64_t kTileBytes = 192 * 1024;
constexpr int64_t kChunksPerThread = 4;
// Up to this many tokens, SIMD ISAs read the FP8 bytes directly in the dot product; more
// tokens share one widening of each row instead.
constexpr int64_t kDirectTokens = 4;

const std::array<float, 256> &fp8_table() {
    static const std::array<float, 256> table = [] {
        std::array<float, 256> t{};
        for (int b = 0; b < 256; ++b) t[size_t(b)] = fp8_e4m3_to_f32(uint8_t(b));
        return t;
    }();
    return table;
}

void widen_scalar(const uint8_t *w, int64_t n, float scale, float *out, const float *table) {
    for (int64_t i = 0; i < n; ++i) out[i] = table[w[i]] * scale;
}

}  // namespace
}  // namespace mst

#if defined(__x86_64__)
// As in kernels_avx2.cpp: the target region holds only functions with internal linkage
// and calls no inline function from a standard header.
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace mst {
namespace {

// e4m3 and f16 differ only in field widths: placing the 7 magnitude bits at the top of
// an f16 magnitude gives exactly the value / 2^8 for normals and subnormals alike (the
// exponent biases differ by 8), so the 2^8 is folded into the scale. Only the NaN codes
// need a fix-up, as they would otherwise decode as 480.
inline __m256 fp8x8_over_256(const uint8_t *p) {
    const __m128i magnitude_mask = _mm_set1_epi16(0x7f), sign_mask = _mm_set1_epi16(0x80);
    const __m128i v = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p)));
    const __m128i magnitude = _mm_and_si128(v, magnitude_mask);
    __m128i h = _mm_or_si128(_mm_slli_epi16(magnitude, 7), _mm_slli_epi16(_mm_and_si128(v, sign_mask), 8));
    h = _mm_or_si128(h, _mm_and_si128(_mm_cmpeq_epi16(magnitude, magnitude_mask), _mm_set1_epi16(0x7e00)));
    return _mm256_cvtph_ps(h);
}

#include "backends/cpu/hsum_avx2.h"

// Scaling by 2^8 is exact, so the product has the one rounding of the scalar path.
void widen_avx2(const uint8_t *w, int64_t n, float scale, float *out, const float *table) {
    const __m256 s = _mm256_set1_ps(scale * 256.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(fp8x8_over_256(w + i), s));
    for (; i < n; ++i) out[i] = table[w[i]] * scale;
}

// One row against NT tokens straight from the FP8 bytes (the few-token case, where
// widening to memory would cost more than the arithmetic): each block's products are
// summed unscaled and the block's scale applied to the sum.
template <int NT>
void dot_row_fp8(const uint8_t *w, int64_t cols, const float *scales, int64_t block_cols, const float *x, int64_t ldx,
                 float *y, int64_t ldy, const float *table) {
    __m256 total[NT];
    float total_tail[NT];
    for (int t = 0; t < NT; ++t) {
        total[t] = _mm256_setzero_ps();
        total_tail[t] = 0.0f;
    }
    for (int64_t c0 = 0, cb = 0; c0 < cols; c0 += block_cols, ++cb) {
        const int64_t c1 = c0 + block_cols < cols ? c0 + block_cols : cols;
        // Two accumulators per token hide the FMA latency (a single token is one long chain).
        __m256 acc[NT], acc2[NT];
        float tail[NT];
        for (int t = 0; t < NT; ++t) {
            acc[t] = _mm256_setzero_ps();
            acc2[t] = _mm256_setzero_ps();
            tail[t] = 0.0f;
        }
        int64_t c = c0;
        for (; c + 16 <= c1; c += 16) {
            const __m256 wa = fp8x8_over_256(w + c), wb = fp8x8_over_256(w + c + 8);
            for (int t = 0; t < NT; ++t) {
                acc[t] = _mm256_fmadd_ps(wa, _mm256_loadu_ps(x + t * ldx + c), acc[t]);
                acc2[t] = _mm256_fmadd_ps(wb, _mm256_loadu_ps(x + t * ldx + c + 8), acc2[t]);
            }
        }
        for (; c + 8 <= c1; c += 8) {
            const __m256 wv = fp8x8_over_256(w + c);
            for (int t = 0; t < NT; ++t) acc[t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * ldx + c), acc[t]);
        }
        for (; c < c1; ++c)
            for (int t = 0; t < NT; ++t) tail[t] += table[w[c]] * x[t * ldx + c];
        const __m256 s = _mm256_set1_ps(scales[cb] * 256.0f);
        for (int t = 0; t < NT; ++t) {
            total[t] = _mm256_fmadd_ps(_mm256_add_ps(acc[t], acc2[t]), s, total[t]);
            total_tail[t] += tail[t] * scales[cb];
        }
    }
    for (int t = 0; t < NT; ++t) y[t * ldy] = hsum8(total[t]) + total_tail[t];
}

void dot_row_fp8_avx2(const uint8_t *w, int64_t cols, const float *scales, int64_t block_cols, const float *x,
                      int64_t ldx, int n_tok, float *y, int64_t ldy, const float *table) {
    switch (n_tok) {
        case 1: return dot_row_fp8<1>(w, cols, scales, block_cols, x, ldx, y, ldy, table);
        case 2: return dot_row_fp8<2>(w, cols, scales, block_cols, x, ldx, y, ldy, table);
        case 3: return dot_row_fp8<3>(w, cols, scales, block_cols, x, ldx, y, ldy, table);
        default: return dot_row_fp8<4>(w, cols, scales, block_cols, x, ldx, y, ldy, table);
    }
}

}  // namespace
}  // namespace mst
#pragma GCC pop_options
#endif

namespace mst {

void CpuBackend::matmul_block_fp8(const WeightView &w, const WeightView &scale_inv, int32_t block_rows,
                                  int32_t block_cols, const float *x, float *y, int64_t n_tokens) {
    check_matmul_block_fp8_params(w, scale_inv, block_rows, block_cols, x, y, n_tokens);
    const int64_t rows = w.rows, cols = w.cols, scale_cols = scale_inv.cols;
    if (rows == 0 || n_tokens == 0) return;
    if (cols == 0) {
        std::fill(y, y + rows * n_tokens, 0.0f);
        return;
    }

#if defined(__x86_64__)
    const bool direct = isa_ != CpuIsa::Scalar && n_tokens <= kDirectTokens;
    const auto widen = isa_ == CpuIsa::Scalar ? widen_scalar : widen_avx2;
#else
    const bool direct = false;
    const auto widen = widen_scalar;
#endif
    const float *table = fp8_table().data();
    const int threads = threads_for(rows * cols * n_tokens);
    const int64_t balanced = (rows + threads * kChunksPerThread - 1) / (threads * kChunksPerThread);
    const int64_t rows_per_chunk =
        direct ? balanced
               : std::clamp(std::min(kTileBytes / (cols * int64_t(sizeof(float))), balanced), int64_t(1), rows);
    const int64_t n_chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
    const auto *wbytes = static_cast<const uint8_t *>(w.data);
    const auto *sbytes = static_cast<const unsigned char *>(scale_inv.data);
    const CpuKernels &k = kernels_;

    parallel_for(n_chunks, threads, [&](int64_t b_begin, int64_t b_end) {
        std::vector<float> tile(static_cast<size_t>(direct ? 0 : rows_per_chunk * cols));
        std::vector<float> scales(static_cast<size_t>(scale_cols));
        int64_t scale_row = -1;
        for (int64_t b = b_begin; b < b_end; ++b) {
            const int64_t r0 = b * rows_per_chunk, nr = std::min(rows_per_chunk, rows - r0);
            for (int64_t r = r0; r < r0 + nr; ++r) {
                if (r / block_rows != scale_row) {
                    scale_row = r / block_rows;
                    // Copied, as the scales of a streamed expert may sit at any byte offset.
                    std::memcpy(scales.data(), sbytes + size_t(scale_row * scale_cols) * sizeof(float),
                                size_t(scale_cols) * sizeof(float));
                }
#if defined(__x86_64__)
                if (direct) {
                    dot_row_fp8_avx2(wbytes + r * cols, cols, scales.data(), block_cols, x, cols, int(n_tokens), y + r,
                                     rows, table);
                    continue;
                }
#endif
                float *out = tile.data() + (r - r0) * cols;
                for (int64_t cb = 0; cb < scale_cols; ++cb) {
                    const int64_t c0 = cb * block_cols;
                    widen(wbytes + r * cols + c0, std::min<int64_t>(block_cols, cols - c0), scales[size_t(cb)],
                          out + c0, table);
                }
            }
            if (direct) continue;
            for (int64_t t = 0; t < n_tokens; t += k.max_tokens) {
                const int n_tok = int(std::min<int64_t>(k.max_tokens, n_tokens - t));
                k.dot_rows_f32(tile.data(), nr, cols, x + t * cols, cols, n_tok, y + t * rows + r0, rows);
            }
        }
    });
}

}  // namespace mst
