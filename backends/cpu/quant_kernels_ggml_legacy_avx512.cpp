// AVX-512 kernels for the GGML legacy types (F + BW + VL): the AVX2 kernels' arithmetic on
// 512-bit vectors, as quant_kernels_avx512.cpp does for moestream's Q8 / Q4. A sub-block's
// 32 byte codes (ggml_legacy_decode_simd.h) widen into one vector of 16-bit lanes and meet
// the whole 32-value activation block in one madd, where AVX2 needs two madds and an add;
// the 32 vector registers hold a tile of up to 4 rows x 4 tokens or 2 rows x 8 tokens, so
// during prefill each sub-block is decoded once for 8 tokens (AVX2: 4). One token, and
// the types where this did not beat AVX2, are left to the AVX2 kernels (kAvx512). The
// activations are the same 16-bit blocks on every path, so the integer sums equal the
// scalar kernel's. As in the AVX2 file, the target is switched on for this file's own functions only and
// everything inside the target region has internal linkage.
#if defined(__x86_64__)

#include "backends/cpu/avx512_intrinsics.h"

#include <cstdint>

#include "backends/cpu/quant_kernels_ggml_legacy.h"
#include "core/ggml_legacy_quants.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")

namespace mst {
namespace {

#include "backends/cpu/token_tile_dispatch.h"

#include "backends/cpu/ggml_legacy_decode_simd.h"

constexpr int kMaxTokens = 8;

struct Decoded {
    __m512i codes;  // the 32 codes, 16-bit lanes
    float scale, min;
};

template <typename K>
inline void decode(const uint8_t *row, int64_t b, Decoded &out) {
    LegacyBytes v;
    K::decode(row, b, v);
    out.codes = _mm512_cvtepi8_epi16(_mm256_set_m128i(v.hi, v.lo));
    out.scale = v.scale;
    out.min = v.min;
}

// NR rows x NT tokens: each sub-block decoded once serves NT tokens, each activation block
// loaded once serves NR rows.
template <typename K, int NR, int NT>
inline void dot_tile(const uint8_t *w, int64_t row_bytes, int64_t n_blocks, const QuantizedActivation *x, int64_t ldx,
                     float *y, int64_t ldy) {
    __m512 acc[NR][NT];
    float min_acc[NR][NT];
    for (int r = 0; r < NR; ++r)
        for (int t = 0; t < NT; ++t) {
            acc[r][t] = _mm512_setzero_ps();
            min_acc[r][t] = 0.0f;
        }
    for (int64_t b = 0; b < n_blocks; ++b) {
        Decoded wb[NR];
        for (int r = 0; r < NR; ++r) decode<K>(w + r * row_bytes, b, wb[r]);
        for (int t = 0; t < NT; ++t) {
            const QuantizedActivation &a = x[t * ldx + b];
            const __m512i xv = _mm512_loadu_si512(a.q);
            for (int r = 0; r < NR; ++r) {
                const __m512i sums = _mm512_madd_epi16(wb[r].codes, xv);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_set1_ps(wb[r].scale * a.d), acc[r][t]);
                if constexpr (K::kHasMin) min_acc[r][t] += wb[r].min * a.sum;
            }
        }
    }
    for (int r = 0; r < NR; ++r)
        for (int t = 0; t < NT; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]) + min_acc[r][t];
}

template <typename K, int NT>
void dot_rows_tile(const uint8_t *w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks, const QuantizedActivation *x,
                   int64_t ldx, float *y, int64_t ldy) {
    // Registers: NR * NT accumulators + NR decoded sub-blocks + 1 activation block <= 32.
    constexpr int NR = NT <= 4 ? 4 : 2;
    int64_t r = 0;
    for (; r + NR <= n_rows; r += NR) dot_tile<K, NR, NT>(w + r * row_bytes, row_bytes, n_blocks, x, ldx, y + r, ldy);
    for (; r < n_rows; ++r) dot_tile<K, 1, NT>(w + r * row_bytes, row_bytes, n_blocks, x, ldx, y + r, ldy);
}

// The AVX2 kernel of type T, over at most its tile of tokens at a time (this table's tile
// is larger). No std::min: an inline library function instantiated in this target region
// could be the copy the linker keeps for every file.
template <DType T>
void avx2_kernel(const void *w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks, const QuantizedActivation *x,
                 int64_t ldx, int n_tok, float *y, int64_t ldy) {
    const QuantKernels::DotRowsFn fn = ggml_legacy_kernel(ggml_legacy_kernels_avx2(), T);
    const int tile = ggml_legacy_kernels_avx2().max_tokens;
    for (int t = 0; t < n_tok; t += tile)
        fn(w, row_bytes, n_rows, n_blocks, x + t * ldx, ldx, n_tok - t < tile ? n_tok - t : tile, y + t * ldy, ldy);
}

// One token (decode) goes to the AVX2 kernel: with no token to reuse a decoded sub-block
// for, the 512-bit widening costs more than the halved madds save (bench/README.md, "GGML
// types on AVX-512").
template <typename K, DType T>
void dot_rows(const void *w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks, const QuantizedActivation *x,
              int64_t ldx, int n_tok, float *y, int64_t ldy) {
    if (n_tok == 1) return avx2_kernel<T>(w, row_bytes, n_rows, n_blocks, x, ldx, 1, y, ldy);
    const auto *wb = static_cast<const uint8_t *>(w);
    dispatch_token_tile(n_tok, [&](auto nt) {
        // TokenTile<1> is never called here; instantiating it costs nothing at run time.
        dot_rows_tile<K, decltype(nt)::value>(wb, row_bytes, n_rows, n_blocks, x, ldx, y, ldy);
    });
}

// Measured on the 2-vCPU Xeon this was written on (bench/README.md): the 512-bit tiles beat
// AVX2 at 32 tokens for Q5_0 and MXFP4 and only matched it for the others, which keep
// their AVX2 kernels.
constexpr GgmlLegacyKernels kAvx512{
    .q4_0 = avx2_kernel<DType::GGML_Q4_0>,
    .q5_0 = dot_rows<Q5_0, DType::GGML_Q5_0>,
    .q5_1 = avx2_kernel<DType::GGML_Q5_1>,
    .iq4_nl = avx2_kernel<DType::GGML_IQ4_NL>,
    .iq4_xs = avx2_kernel<DType::GGML_IQ4_XS>,
    .mxfp4 = dot_rows<Mxfp4, DType::GGML_MXFP4>,
    .max_tokens = kMaxTokens,
};

}  // namespace
}  // namespace mst

#pragma GCC pop_options

namespace mst {
const GgmlLegacyKernels &ggml_legacy_kernels_avx512() { return kAvx512; }
}  // namespace mst

#endif  // __x86_64__
