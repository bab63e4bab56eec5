// matmul on compressed-tensors pack-quantized integers (PACKED_I4, PACKED_I8; the layout
// is in core/packed_int.h): y[t][r] = sum_c q[r][c] * scale[r][c / group] * x[t][c].
// The words are decoded in registers, a chunk at a time, and used for every token of a
// tile; no float copy of the matrix is made, so a streamed INT4 expert is read at 4.5 bits
// per weight (with its bf16 scale per 32) and computed on as it is.
//
// Each group's integer dot product is summed in float and scaled once, so the scale
// multiplies a sum of group-size products rather than each weight. Chunks are 16 values
// (AVX-512) or 8 (AVX2); a group size that is not a multiple of the chunk takes the
// narrower path, or the scalar one.
#if defined(__x86_64__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

#include <algorithm>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/row_block_loop.h"
#include "core/packed_int.h"

namespace mst {
namespace {

constexpr int kTokenTile = 4;

// One matrix as the row kernels see it.
struct PackedRows {
    const uint8_t *words;   // row 0's words
    const uint8_t *scales;  // row 0's bf16 scales
    int64_t cols, group, row_bytes, scale_row_bytes;
};

// For rows r < n_rows and tokens t < n_tok: y[t * ldy + r] = sum_c w[r][c] * x[t * ldx + c].
using PackedRowsFn = void (*)(const PackedRows &m, int64_t n_rows, const float *x, int64_t ldx, int n_tok, float *y,
                              int64_t ldy);

template <int Bits>
void rows_scalar(const PackedRows &m, int64_t n_rows, const float *x, int64_t ldx, int n_tok, float *y, int64_t ldy) {
    const int64_t groups = m.cols / m.group;
    for (int64_t r = 0; r < n_rows; ++r) {
        const uint8_t *rw = m.words + r * m.row_bytes, *rs = m.scales + r * m.scale_row_bytes;
        float acc[kTokenTile] = {};
        for (int64_t g = 0; g < groups; ++g) {
            float part[kTokenTile] = {};
            for (int64_t c = g * m.group; c < (g + 1) * m.group; ++c) {
                const float q = float(packed_int_code(rw, c, Bits));
                for (int t = 0; t < n_tok; ++t) part[t] += q * x[t * ldx + c];
            }
            const float s = packed_int_scale(rs, g);
            for (int t = 0; t < n_tok; ++t) acc[t] += part[t] * s;
        }
        for (int t = 0; t < n_tok; ++t) y[t * ldy + r] = acc[t];
    }
}

}  // namespace
}  // namespace mst

#if defined(__x86_64__)
// Everything in the target regions has internal linkage and calls no inline function from
// a standard header (see kernels_avx2.cpp for why).
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace mst {
namespace {

#include "backends/cpu/hsum_avx2.h"

namespace avx2 {

struct Vec {
    static constexpr int64_t kWidth = 8;
    static __m256 zero() { return _mm256_setzero_ps(); }
    static __m256 load(const float *p) { return _mm256_loadu_ps(p); }
    static __m256 set1(float v) { return _mm256_set1_ps(v); }
    static __m256 fmadd(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
    static float sum(__m256 v) { return hsum8(v); }

    // Values c .. c + 7 of a row, p pointing at value c's byte.
    template <int Bits>
    static __m256 decode(const uint8_t *p) {
        if constexpr (Bits == 4) {
            int word;
            __builtin_memcpy(&word, p, sizeof word);
            const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
            const __m256i nibbles = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(word), shifts),
                                                     _mm256_set1_epi32(0x0f));
            return _mm256_cvtepi32_ps(_mm256_sub_epi32(nibbles, _mm256_set1_epi32(8)));
        } else {
            const __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p)));
            return _mm256_cvtepi32_ps(_mm256_sub_epi32(bytes, _mm256_set1_epi32(128)));
        }
    }
};

#include "backends/cpu/packed_int_rows_tile.inc"

}  // namespace avx2

}  // namespace
}  // namespace mst

#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")

namespace mst {
namespace {

namespace avx512 {

struct Vec {
    static constexpr int64_t kWidth = 16;
    static __m512 zero() { return _mm512_setzero_ps(); }
    static __m512 load(const float *p) { return _mm512_loadu_ps(p); }
    static __m512 set1(float v) { return _mm512_set1_ps(v); }
    static __m512 fmadd(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
    static float sum(__m512 v) { return _mm512_reduce_add_ps(v); }

    // Values c .. c + 15 of a row, p pointing at value c's byte.
    template <int Bits>
    static __m512 decode(const uint8_t *p) {
        if constexpr (Bits == 4) {
            long long words;
            __builtin_memcpy(&words, p, sizeof words);
            // Lanes 0..7 take the first word, 8..15 the second, each shifted to its nibble.
            const __m512i which = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
            const __m512i shifts = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
            const __m512i spread = _mm512_permutexvar_epi32(which, _mm512_set1_epi64(words));
            const __m512i nibbles = _mm512_and_si512(_mm512_srlv_epi32(spread, shifts), _mm512_set1_epi32(0x0f));
            return _mm512_cvtepi32_ps(_mm512_sub_epi32(nibbles, _mm512_set1_epi32(8)));
        } else {
            const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
            return _mm512_cvtepi32_ps(_mm512_sub_epi32(bytes, _mm512_set1_epi32(128)));
        }
    }
};

#include "backends/cpu/packed_int_rows_tile.inc"

}  // namespace avx512

}  // namespace
}  // namespace mst

#pragma GCC pop_options
#endif  // __x86_64__

namespace mst {
namespace {

PackedRowsFn pick_rows_fn(CpuIsa isa, int bits, int64_t group) {
#if defined(__x86_64__)
    if (isa == CpuIsa::Avx512 && group % 16 == 0) return bits == 4 ? avx512::rows<4> : avx512::rows<8>;
    if (isa != CpuIsa::Scalar && group % 8 == 0) return bits == 4 ? avx2::rows<4> : avx2::rows<8>;
#else
    (void)isa;
    (void)group;
#endif
    return bits == 4 ? rows_scalar<4> : rows_scalar<8>;
}

}  // namespace

void CpuBackend::matmul_packed_int(const WeightView &w, const float *x, float *y, int64_t n_tokens) {
    const int64_t rows = w.rows, cols = w.cols;
    if (rows == 0 || n_tokens == 0) return;
    if (cols == 0) {
        std::fill(y, y + rows * n_tokens, 0.0f);
        return;
    }
    const int bits = packed_int_bits(w.dtype);
    const PackedRows m{static_cast<const uint8_t *>(w.data), w.scales, cols, w.group_size,
                       packed_int_row_words(cols, bits) * 4, cols / w.group_size * 2};
    const PackedRowsFn rows_fn = pick_rows_fn(isa_, bits, w.group_size);
    for_each_row_block(rows, cols, n_tokens, n_threads_, [&](int64_t r0, int64_t nr) {
        PackedRows block = m;
        block.words += r0 * m.row_bytes;
        block.scales += r0 * m.scale_row_bytes;
        for (int64_t t = 0; t < n_tokens; t += kTokenTile)
            rows_fn(block, nr, x + t * cols, cols, int(std::min<int64_t>(kTokenTile, n_tokens - t)), y + t * rows + r0,
                    rows);
    });
}

}  // namespace mst
