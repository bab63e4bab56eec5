// AVX-512 quantized kernels (F + BW + VL): the AVX2 kernels' arithmetic on 512-bit
// vectors. A whole block of 32 codes widens into one vector of 16-bit lanes and meets a
// whole 32-value activation block in one madd (sixteen 32-bit pair sums), where AVX2
// needs two madds and an add; the 32 vector registers hold a tile of up to 4 rows x 8
// tokens, so each weight block is decoded once for 8 tokens during prefill. As in the
// AVX2 file, the target is switched on for this file's own functions only and
// everything inside the target region has internal linkage.
//
// Why not VNNI's dpwssd: the weights' and activations' scales change every 32 values, so
// each block's integer sum is converted and scaled on its own; dpwssd into a zero
// accumulator is exactly this madd. Integer sums cannot overflow (see
// quant_kernels_avx2.cpp). Activations are the same 16-bit blocks as on AVX2 and scalar,
// so the integer part of every dot product is identical on all paths.
#if defined(__x86_64__)

#include "backends/cpu/avx512_intrinsics.h"

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "backends/cpu/cpu_isa.h"
#include "backends/cpu/quant_kernels.h"
#include "core/quant.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")

namespace mst {
namespace {

#include "backends/cpu/token_tile_dispatch.h"

constexpr int kMaxTokens = 8;

struct Q8 {
    using Block = BlockQ8;
    static constexpr bool kHasMin = false;
    static __m512i codes(const BlockQ8 &b) {
        return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(b.q)));
    }
    static float min(const BlockQ8 &) { return 0.0f; }
};

struct Q4 {
    using Block = BlockQ4;
    static constexpr bool kHasMin = true;
    // Low nibbles are elements 0..15, high nibbles 16..31 (core/quant.h).
    static __m512i codes(const BlockQ4 &b) {
        const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.q));
        const __m128i mask = _mm_set1_epi8(0x0f);
        const __m128i lo = _mm_and_si128(packed, mask);
        const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
        return _mm512_cvtepu8_epi16(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1));
    }
    static float min(const BlockQ4 &b) { return _cvtsh_ss(b.m); }
};

// NR rows x NT tokens: each weight block decoded once serves NT tokens, each activation
// block loaded once serves NR rows.
template <typename K, int NR, int NT>
inline void dot_tile(const uint8_t *w, int64_t row_bytes, int64_t n_blocks, const QuantizedActivation *x,
                     int64_t ldx, float *y, int64_t ldy) {
    using Block = typename K::Block;
    __m512 acc[NR][NT];
    float min_acc[NR][NT];
    for (int r = 0; r < NR; ++r)
        for (int t = 0; t < NT; ++t) {
            acc[r][t] = _mm512_setzero_ps();
            min_acc[r][t] = 0.0f;
        }
    for (int64_t b = 0; b < n_blocks; ++b) {
        __m512i wv[NR];
        float wd[NR], wm[NR];
        // The next tile's bytes at this block, into L2 (quant_kernels_avx512_vnni.cpp says why).
        for (int r = 0; r < NR; ++r)
            _mm_prefetch(reinterpret_cast<const char *>(w + (NR + r) * row_bytes + b * int64_t(sizeof(Block))),
                         _MM_HINT_T1);
        for (int r = 0; r < NR; ++r) {
            const Block &blk = reinterpret_cast<const Block *>(w + r * row_bytes)[b];
            wv[r] = K::codes(blk);
            wd[r] = _cvtsh_ss(blk.d);
            wm[r] = K::min(blk);
        }
        for (int t = 0; t < NT; ++t) {
            const QuantizedActivation &a = x[t * ldx + b];
            const __m512i xv = _mm512_loadu_si512(a.q);
            for (int r = 0; r < NR; ++r) {
                const __m512i sums = _mm512_madd_epi16(wv[r], xv);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_set1_ps(wd[r] * a.d), acc[r][t]);
                // One rounding, as fma_scalar in quant_dot_tile_avx2.h says why.
                if constexpr (K::kHasMin)
                    min_acc[r][t] = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(wm[r]), _mm_set_ss(a.sum), _mm_set_ss(min_acc[r][t])));
            }
        }
    }
    for (int r = 0; r < NR; ++r)
        for (int t = 0; t < NT; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]) + min_acc[r][t];
}

template <typename K, int NT>
void dot_rows_tile(const uint8_t *w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks,
                   const QuantizedActivation *x, int64_t ldx, float *y, int64_t ldy) {
    // Registers: NR * NT accumulators + NR weight blocks + 1 activation block <= 32.
    constexpr int NR = NT <= 4 ? 4 : 2;
    int64_t r = 0;
    for (; r + NR <= n_rows; r += NR) dot_tile<K, NR, NT>(w + r * row_bytes, row_bytes, n_blocks, x, ldx, y + r, ldy);
    for (; r < n_rows; ++r) dot_tile<K, 1, NT>(w + r * row_bytes, row_bytes, n_blocks, x, ldx, y + r, ldy);
}

template <typename K>
void dot_rows(const void *w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks, const QuantizedActivation *x,
              int64_t ldx, int n_tok, float *y, int64_t ldy) {
    const auto *wb = static_cast<const uint8_t *>(w);
    dispatch_token_tile(n_tok, [&](auto nt) {
        dot_rows_tile<K, decltype(nt)::value>(wb, row_bytes, n_rows, n_blocks, x, ldx, y, ldy);
    });
}

// The activations are quantized by the AVX2 code (every AVX-512 CPU here has AVX2), so
// they are bit for bit the blocks the AVX2 kernels see. Q8 and Q4 take the VNNI kernels
// where the CPU has them.
const QuantKernels &avx512_table() {
    static const QuantKernels table{
        .quantize_activation = quant_kernels_avx2().quantize_activation,
        .dot_rows_q8 = cpu_use_avx512_vnni() ? quant_dot_rows_q8_avx512_vnni() : dot_rows<Q8>,
        .dot_rows_q4 = cpu_use_avx512_vnni() ? quant_dot_rows_q4_avx512_vnni() : dot_rows<Q4>,
        .max_tokens = kMaxTokens,
    };
    return table;
}

// 8-bit activations (quantized by the AVX2 code, as above): one vpdpbusd per pair of blocks
// on VNNI, else the madd kernels.
const QuantKernels &avx512_int8_table() {
    static const QuantKernels table = [] {
        QuantKernels t{
            .quantize_activation = quant_kernels_avx2_int8().quantize_activation,
            .dot_rows_q8 = cpu_use_avx512_vnni() ? quant_dot_rows_q8_avx512_vnni_int8() : dot_rows<Q8>,
            .dot_rows_q4 = cpu_use_avx512_vnni() ? quant_dot_rows_q4_avx512_vnni_int8() : dot_rows<Q4>,
            .max_tokens = kMaxTokens,
            .int8_activations = true,
        };
        // AMX-INT8 for the multi-token products, the kernels above for a call's few tokens
        // (and for Q8's unless MST_CPU_AMX=all).
        if (cpu_use_amx()) {
            t.dot_rows_q8 = quant_dot_rows_q8_amx_int8(t.dot_rows_q8, kMaxTokens,
                                                       cpu_use_amx_for_q8() ? kAmxMinTokens : kAmxMaxTokens + 1);
            t.dot_rows_q4 = quant_dot_rows_q4_amx_int8(t.dot_rows_q4, kMaxTokens, kAmxMinTokens);
            t.max_tokens = kAmxMaxTokens;
        }
        return t;
    }();
    return table;
}

}  // namespace
}  // namespace mst

#pragma GCC pop_options

namespace mst {
const QuantKernels &quant_kernels_avx512() { return avx512_table(); }
const QuantKernels &quant_kernels_avx512_int8() { return avx512_int8_table(); }

bool cpu_use_avx512_vnni() {
    // MST_CPU_VNNI=0 keeps the madd kernel, to measure one against the other.
    static const bool use = [] {
        const char *env = std::getenv("MST_CPU_VNNI");
        return __builtin_cpu_supports("avx512vnni") && !(env && std::string_view(env) == "0");
    }();
    return use;
}
}  // namespace mst

#endif  // __x86_64__
