// The Q8 and Q4 row kernels for CPUs with AVX-512 VNNI (vpdpbusd: 64 byte products summed
// in fours into sixteen 32-bit lanes and accumulated, in one instruction), where the plain
// AVX-512 kernels (quant_kernels_avx512.cpp) widen every code to 16 bits and need one madd
// per block. Used by the AVX-512 table when the CPU has VNNI.
//
// The activations stay the 16-bit blocks of every other path (QuantizedActivation), so no
// accuracy is given up: each 16-bit value q is split into its high byte h = q >> 8
// (signed) and its low byte l = q & 0xff (unsigned), q = 256 h + l. vpdpbusd multiplies
// unsigned bytes by signed ones: the weight codes meet l as the signed operand, and h as
// the unsigned one where they are unsigned (Q4's 0..15); Q8's signed codes are shifted to
// unsigned, c + 128, and 128 times the activations' high bytes' sum taken off (a per-token
// quantity, made once with the split, not once per row):
//   Q4: sum(c q) = 256 dpbusd(c, h) + dpbusd(l, c)
//   Q8: sum(c q) = 256 (dpbusd(c + 128, h) - 128 sum(h)) + dpbusd(l, c)
// exactly the integer sums the madd kernels compute (no lane of four products overflows).
//
// A zmm holds two blocks (lanes 0-7 the first, 8-15 the second), scaled per lane by the
// product of the two blocks' scales; Q4's minimum term m * sum(x) enters the same
// accumulator as m * (sum / 8) in each of the block's 8 lanes (sum / 8 is exact).
//
// With 8-bit activations (|q| <= 127, QuantKernels::int8_activations) no split is needed:
// the codes meet q itself in one vpdpbusd, h's formulas with q in place of h and no low
// half (Q8: dpbusd(c + 128, q) - 128 sum(q); Q4: dpbusd(c, q)), which halves the integer
// work of a pair; the prompt's products are bound by it (bench/README.md, "int8
// activations").
//
// The split activations are made once per call for a span of blocks (up to 8192 columns at
// one token) and every token of the call, on the stack, and serve every row of the call (a
// row block or a 64-row unit of the routed experts). Each output is computed alone in the
// same order whatever the rows, tokens and threads of the call: sums reduced once per chunk
// of kChunkBlocks from column 0, so its bits depend only on the weights, the activations
// and the width.
//
// As in the other kernel files, the target is switched on for this file's own functions
// only and everything inside the target region has internal linkage.
#if defined(__x86_64__)

#include "backends/cpu/avx512_intrinsics.h"

#include <cstdint>
#include <cstring>

#include "backends/cpu/quant_kernels.h"
#include "core/quant.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")

namespace mst {
namespace {

#include "backends/cpu/token_tile_dispatch.h"

constexpr int kMaxTokens = 8;
// Each row of a tile prefetches its bytes one tile ahead, into L2: the same column of the
// row NR rows further on, which (the rows being contiguous, and a call's rows one range)
// is the next tile's. The hardware prefetcher alone left a one-token product from memory
// at the sum of its compute time and its memory time, and prefetching 512 bytes ahead in
// the same row (into L1) helped only where rows are long: with short rows (an expert's
// 768-wide down projection, 480 bytes a q4 row) it lands in the tile's own next row, which
// is already loading. One tile ahead, one thread from memory (bench_matvec_cpu, load 2-3):
// q4 768 x 2048 9.2 -> 13.1 GB/CPU-s, q4 2048 x 768 7.5 -> 14.1, q8 12.4 -> 15.5 and
// 9.7 -> 14.6; into L1 instead (T0) 11.7 / 12.5 / 14.8 / 14.9, two tiles or 512 bytes
// further no better (bench/README.md, "One-token kernels").
// Blocks summed in a vector before each reduction into the output; the split activations
// held at once are 8 such chunks (x 160 bytes a block = 40 KiB), spread over the tokens.
constexpr int64_t kChunkBlocks = 32;
constexpr int64_t kChunkPairs = kChunkBlocks / 2;

// One token's activations for a pair of blocks, split for vpdpbusd.
struct alignas(64) SplitPair {
    int8_t hi[64];     // q >> 8 of both blocks' 64 values; 8-bit activations: q itself
    uint8_t lo[64];    // q & 0xff
    float scale[16];   // lanes 0-7: the first block's d, 8-15: the second's
    float sum8[16];    // the block's sum / 8, likewise (Q4)
    int32_t bias[16];  // -128 times the sum of each lane's four high bytes (Q8)
};

// Lanes 0-7 a, lanes 8-15 b.
inline __m512 halves(float a, float b) { return _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(a), _mm512_set1_ps(b)); }

template <typename K, bool kAct8>
inline void split_pair(const QuantizedActivation &a, const QuantizedActivation *b, SplitPair &out) {
    const __m512i qa = _mm512_loadu_si512(a.q);
    const __m512i qb = b ? _mm512_loadu_si512(b->q) : _mm512_setzero_si512();
    // vpmovwb truncates: 8-bit activations fit a byte whole.
    const __m256i ha = _mm512_cvtepi16_epi8(kAct8 ? qa : _mm512_srai_epi16(qa, 8));
    const __m256i hb = _mm512_cvtepi16_epi8(kAct8 ? qb : _mm512_srai_epi16(qb, 8));
    // vpmovwb truncates: the low byte of each value.
    const __m256i la = _mm512_cvtepi16_epi8(qa);
    const __m256i lb = _mm512_cvtepi16_epi8(qb);
    const __m512i hi = _mm512_inserti64x4(_mm512_castsi256_si512(ha), hb, 1);
    _mm512_store_si512(out.hi, hi);
    if constexpr (K::kSignedCodes) {
        const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), hi);
        _mm512_store_si512(out.bias, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sums, 7)));
    }
    if constexpr (!kAct8) _mm512_store_si512(out.lo, _mm512_inserti64x4(_mm512_castsi256_si512(la), lb, 1));
    _mm512_store_ps(out.scale, halves(a.d, b ? b->d : 0.0f));
    _mm512_store_ps(out.sum8, halves(a.sum * 0.125f, b ? b->sum * 0.125f : 0.0f));
}

// Lane indices that put element 0 of a vector in lanes 0-7 and element 1 (Q8's second
// scale) or 2 (Q4's second scale, after [d, m] of the first block) in lanes 8-15, and
// likewise Q4's minimums (elements 1 and 3).
inline __m512i lanes(int first, int second) {
    return _mm512_mask_blend_epi32(0xff00, _mm512_set1_epi32(first), _mm512_set1_epi32(second));
}

// A row's pair of blocks: the 64 codes in element order (Q8: also shifted to unsigned),
// the scales and (Q4) minimums per lane.
struct WeightPair {
    __m512i codes, ucodes;
    __m512 d, m;
};

struct Q8 {
    using Block = BlockQ8;
    static constexpr bool kHasMin = false;
    static constexpr bool kSignedCodes = true;
    static void load_pair(const BlockQ8 *row, int64_t b, bool has_second, WeightPair &out) {
        const __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(row[b].q));
        const __m256i qb = has_second ? _mm256_loadu_si256(reinterpret_cast<const __m256i *>(row[b + 1].q))
                                      : _mm256_setzero_si256();
        out.codes = _mm512_inserti64x4(_mm512_castsi256_si512(qa), qb, 1);
        out.ucodes = _mm512_xor_si512(out.codes, _mm512_set1_epi8(int8_t(0x80)));
        // Both f16 scales converted in one instruction, then spread to their lanes.
        const __m128i dd = _mm_insert_epi16(_mm_cvtsi32_si128(row[b].d), has_second ? row[b + 1].d : 0, 1);
        out.d = _mm512_permutexvar_ps(lanes(0, 1), _mm512_castps128_ps512(_mm_cvtph_ps(dd)));
    }
};

struct Q4 {
    using Block = BlockQ4;
    static constexpr bool kHasMin = true;
    static constexpr bool kSignedCodes = false;
    static void load_pair(const BlockQ4 *row, int64_t b, bool has_second, WeightPair &out) {
        // 128-bit lanes: the first block's packed codes twice, then the second's twice; the
        // odd lanes take the high nibbles (elements 16..31), the even lanes the low ones.
        const __m128i pa = _mm_loadu_si128(reinterpret_cast<const __m128i *>(row[b].q));
        const __m128i pb =
            has_second ? _mm_loadu_si128(reinterpret_cast<const __m128i *>(row[b + 1].q)) : _mm_setzero_si128();
        const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(pa)),
                                                _mm256_broadcastsi128_si256(pb), 1);
        const __m512i shifts = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);
        out.codes = _mm512_and_si512(_mm512_srlv_epi64(both, shifts), _mm512_set1_epi8(0x0f));
        // d and m of both blocks ([da, ma, db, mb]) converted in one instruction, then
        // spread to their lanes.
        uint32_t dm_a, dm_b = 0;
        std::memcpy(&dm_a, &row[b].d, 4);
        if (has_second) std::memcpy(&dm_b, &row[b + 1].d, 4);
        const __m128i packed = _mm_insert_epi32(_mm_cvtsi32_si128(int(dm_a)), int(dm_b), 1);
        const __m512 dm = _mm512_castps128_ps512(_mm_cvtph_ps(packed));
        out.d = _mm512_permutexvar_ps(lanes(0, 2), dm);
        out.m = _mm512_permutexvar_ps(lanes(1, 3), dm);
    }
};

// NR rows x NT tokens over pairs [p0, p1) whose split activations are
// `split[t * split_pairs + (p - p0)]`. The sums are reduced and added into y at every
// kChunkPairs boundary (counted from column 0; the first chunk stores), so a row walked
// over several chunks in one pass gets the bits of one pass per chunk.
template <typename K, bool kAct8, int NR, int NT>
inline void dot_tile(const uint8_t *w, int64_t row_bytes, int64_t n_blocks, int64_t p0, int64_t p1,
                     const SplitPair *split, int64_t split_pairs, float *y, int64_t ldy) {
    for (int64_t c0 = p0; c0 < p1; c0 += kChunkPairs) {
        const int64_t c1 = c0 + kChunkPairs < p1 ? c0 + kChunkPairs : p1;
        __m512 acc[NR][NT];
        for (int r = 0; r < NR; ++r)
            for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
        for (int64_t p = c0; p < c1; ++p) {
            WeightPair wp[NR];
            const uint8_t *next_tile = w + NR * row_bytes + 2 * p * int64_t(sizeof(typename K::Block));
            for (int r = 0; r < NR; ++r)
                _mm_prefetch(reinterpret_cast<const char *>(next_tile + r * row_bytes), _MM_HINT_T1);
            for (int r = 0; r < NR; ++r)
                K::load_pair(reinterpret_cast<const typename K::Block *>(w + r * row_bytes), 2 * p,
                             2 * p + 1 < n_blocks, wp[r]);
            for (int t = 0; t < NT; ++t) {
                const SplitPair &s = split[t * split_pairs + (p - p0)];
                const __m512i hi = _mm512_load_si512(s.hi);
                const __m512i lo = kAct8 ? _mm512_setzero_si512() : _mm512_load_si512(s.lo);
                const __m512i bias = K::kSignedCodes ? _mm512_load_si512(s.bias) : _mm512_setzero_si512();
                const __m512 xd = _mm512_load_ps(s.scale), xs = _mm512_load_ps(s.sum8);
                for (int r = 0; r < NR; ++r) {
                    const __m512i high =
                        _mm512_dpbusd_epi32(bias, K::kSignedCodes ? wp[r].ucodes : wp[r].codes, hi);
                    const __m512i sums =
                        kAct8 ? high : _mm512_dpbusd_epi32(_mm512_slli_epi32(high, 8), lo, wp[r].codes);
                    acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_mul_ps(wp[r].d, xd), acc[r][t]);
                    if constexpr (K::kHasMin) acc[r][t] = _mm512_fmadd_ps(wp[r].m, xs, acc[r][t]);
                }
            }
        }
        for (int r = 0; r < NR; ++r)
            for (int t = 0; t < NT; ++t) {
                const float v = _mm512_reduce_add_ps(acc[r][t]);
                y[t * ldy + r] = c0 == 0 ? v : y[t * ldy + r] + v;
            }
    }
}

template <typename K, bool kAct8, int NT>
void dot_rows_tile(const uint8_t *w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks,
                   const QuantizedActivation *x, int64_t ldx, float *y, int64_t ldy) {
    // Registers: NR * NT accumulators + 3 NR weight vectors + 5 activation vectors <= 32,
    // except at one token, where 8 rows (a few values reloaded from L1) keep more rows'
    // loads in flight: from memory, q8 +8-17% against 4 rows (bench/README.md, "Decode
    // profile"). Each output is computed alone, so the bits do not depend on NR.
    constexpr int NR = NT == 1 ? 8 : NT <= 2 ? 4 : 2;
    // Pairs split per token at once: the whole buffer's worth, in whole chunks, so that a
    // tile walks each row over as many chunks as fit in one pass (one token: 8192 columns)
    // instead of coming back to the same rows once per chunk.
    constexpr int64_t kSplitPairs = kMaxTokens * kChunkPairs / NT / kChunkPairs * kChunkPairs;
    const int64_t n_pairs = (n_blocks + 1) / 2;
    SplitPair split[kMaxTokens * kChunkPairs];
    for (int64_t p0 = 0; p0 < n_pairs; p0 += kSplitPairs) {
        const int64_t p1 = p0 + kSplitPairs < n_pairs ? p0 + kSplitPairs : n_pairs;
        for (int t = 0; t < NT; ++t)
            for (int64_t p = p0; p < p1; ++p) {
                const QuantizedActivation *a = x + t * ldx + 2 * p;
                split_pair<K, kAct8>(a[0], 2 * p + 1 < n_blocks ? a + 1 : nullptr, split[t * kSplitPairs + (p - p0)]);
            }
        int64_t r = 0;
        for (; r + NR <= n_rows; r += NR)
            dot_tile<K, kAct8, NR, NT>(w + r * row_bytes, row_bytes, n_blocks, p0, p1, split, kSplitPairs, y + r, ldy);
        for (; r < n_rows; ++r)
            dot_tile<K, kAct8, 1, NT>(w + r * row_bytes, row_bytes, n_blocks, p0, p1, split, kSplitPairs, y + r, ldy);
    }
}

template <typename K, bool kAct8>
void dot_rows(const void *w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks, const QuantizedActivation *x,
              int64_t ldx, int n_tok, float *y, int64_t ldy) {
    const auto *wb = static_cast<const uint8_t *>(w);
    dispatch_token_tile(n_tok, [&](auto nt) {
        dot_rows_tile<K, kAct8, decltype(nt)::value>(wb, row_bytes, n_rows, n_blocks, x, ldx, y, ldy);
    });
}

}  // namespace
}  // namespace mst

#pragma GCC pop_options

namespace mst {
QuantKernels::DotRowsFn quant_dot_rows_q8_avx512_vnni() { return dot_rows<Q8, false>; }
QuantKernels::DotRowsFn quant_dot_rows_q4_avx512_vnni() { return dot_rows<Q4, false>; }
QuantKernels::DotRowsFn quant_dot_rows_q8_avx512_vnni_int8() { return dot_rows<Q8, true>; }
QuantKernels::DotRowsFn quant_dot_rows_q4_avx512_vnni_int8() { return dot_rows<Q4, true>; }
}  // namespace mst

#endif  // __x86_64__
