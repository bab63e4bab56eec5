// The Q8 and Q4 row kernels with 8-bit activations on AMX-INT8 (Sapphire Rapids and
// later), for the prompt's multi-token products: one tile instruction multiplies 16 weight
// rows by 16 tokens over one 32-element block (16 x 16 x 32 byte products), where the VNNI
// kernels (quant_kernels_avx512_vnni.cpp) need 128 vpdpbusd and their float scaling per
// (row, token) pair. Used by the 8-bit-activation AVX-512 table when cpu_use_amx() says so.
//
// Per call (a row block of a matmul, or a 64-row unit of the routed experts, and up to 16
// tokens):
//   - the activations are packed once for all rows into B tiles (the 32 bytes of a token's
//     block as 8 dwords, dword k in row k, the token in column t; tokens past n_tok are 0)
//     with their scales and sums as 16-token float vectors;
//   - per tile of 16 rows and per block: the rows' codes (Q4 unpacked to bytes, Q8 as
//     stored) are the A tile, tdpbusd (Q4: unsigned codes) or tdpbssd (Q8: signed) makes
//     the 16 x 16 int32 block sums in C, and each row's 16 token sums are scaled into that
//     row's float accumulator: acc += (d_w * d_x) * sum, and for Q4 acc += m_w * x_sum.
// The integer sums are exact (|sum| <= 32 * 127 * 127), so each output differs from the
// scalar 8-bit reference only by the float rounding of those two steps (fused here) over
// the blocks; the tests bound it. Each output is computed on its own, block by block in
// column order, whatever the other rows and tokens of the call, so its bits depend only on
// the weights, the activations and whether the call took this kernel (enough tokens;
// fewer take the table's own kernel): never on the storage tier, cache or threads.
// Measurements: bench/README.md, "AMX-INT8 for the prompt's products".
//
// As in the other kernel files, the target is switched on for this file's own functions
// only and everything inside the target region has internal linkage. GCC's tile
// intrinsics are asm statements that do not tell the compiler which memory they read, so a
// compiler barrier precedes each tile load of a buffer written here.
#if defined(__x86_64__)

#include "backends/cpu/avx512_intrinsics.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "backends/cpu/quant_kernels.h"
#include "core/quant.h"

#pragma GCC push_options
#pragma GCC target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx2,fma,f16c")

namespace mst {
namespace {

constexpr int kTileRows = 16;
constexpr int kTileTokens = kAmxMaxTokens;

// The tile registers: C of four consecutive blocks, and two A (weights) and two B
// (activations) tiles that the blocks take in turn. Macros, not constants: GCC's tile
// intrinsics paste the register number into the asm text.
#define MST_TMM_C0 0
#define MST_TMM_C1 1
#define MST_TMM_C2 2
#define MST_TMM_C3 3
#define MST_TMM_A0 4
#define MST_TMM_A1 5
#define MST_TMM_B0 6
#define MST_TMM_B1 7
// Blocks per step: each step's tile products, stores and loads wait for the previous
// step's; four blocks a step (all eight registers) measured faster than two.
constexpr int kStepBlocks = 4;

// The 64-byte operand of ldtilecfg (palette 1).
struct alignas(64) TileConfig {
    uint8_t palette = 1;
    uint8_t start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};

TileConfig make_config() {
    TileConfig c;
    for (int t : {MST_TMM_C0, MST_TMM_C1, MST_TMM_C2, MST_TMM_C3}) c.rows[t] = kTileRows, c.colsb[t] = kTileTokens * 4;
    for (int t : {MST_TMM_A0, MST_TMM_A1}) c.rows[t] = kTileRows, c.colsb[t] = kQuantBlock;
    for (int t : {MST_TMM_B0, MST_TMM_B1}) c.rows[t] = kQuantBlock / 4, c.colsb[t] = kTileTokens * 4;
    return c;
}

// One block of the call's activations: the B tile and the per-token float factors.
struct alignas(64) PackedActivation {
    int32_t b[kQuantBlock / 4][kTileTokens];  // dword k of token t's 32 bytes at [k][t]
    float d[kTileTokens];
    float sum[kTileTokens];
};

void pack_activations(const QuantizedActivation *x, int64_t ldx, int n_tok, int64_t n_blocks, PackedActivation *out) {
    std::memset(static_cast<void *>(out), 0, size_t(n_blocks) * sizeof(PackedActivation));
    const __m256i dword_rows = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int t = 0; t < n_tok; ++t)
        for (int64_t b = 0; b < n_blocks; ++b) {
            const QuantizedActivation &a = x[t * ldx + b];
            // |q| <= 127: vpmovwb's truncation keeps each value whole.
            const __m256i bytes = _mm512_cvtepi16_epi8(_mm512_loadu_si512(a.q));
            _mm256_i32scatter_epi32(&out[b].b[0][t], _mm256_mullo_epi32(dword_rows, _mm256_set1_epi32(kTileTokens)),
                                    bytes, 4);
            out[b].d[t] = a.d;
            out[b].sum[t] = a.sum;
        }
}

// A row tile's codes for one block, rows past n_rows zero, as 16 rows of 32 bytes; and the
// rows' float scales (and Q4 minimums).
struct alignas(64) WeightTile {
    uint8_t codes[kTileRows][kQuantBlock];
    float d[kTileRows];
    float m[kTileRows];
};

struct Q8 {
    static constexpr bool kHasMin = false;
    static void load(const uint8_t *w, int64_t row_bytes, int n_rows, int64_t b, WeightTile &out) {
        alignas(32) uint16_t d[kTileRows] = {};
        for (int r = 0; r < kTileRows; ++r) {
            __m256i codes = _mm256_setzero_si256();
            if (r < n_rows) {
                const BlockQ8 &blk = reinterpret_cast<const BlockQ8 *>(w + r * row_bytes)[b];
                codes = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(blk.q));
                d[r] = blk.d;
            }
            _mm256_store_si256(reinterpret_cast<__m256i *>(out.codes[r]), codes);
        }
        _mm512_store_ps(out.d, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i *>(d))));
    }
    static constexpr bool kSignedCodes = true;
};

struct Q4 {
    static constexpr bool kHasMin = true;
    static void load(const uint8_t *w, int64_t row_bytes, int n_rows, int64_t b, WeightTile &out) {
        // Two rows per zmm: each row's 16 packed bytes twice, the second copy shifted by 4,
        // so the low nibbles (elements 0..15) and then the high ones (16..31) land in order.
        const __m512i shifts = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);
        alignas(64) uint32_t dm[kTileRows] = {};
        for (int r = 0; r < kTileRows; r += 2) {
            __m128i p[2] = {_mm_setzero_si128(), _mm_setzero_si128()};
            for (int i = 0; i < 2; ++i)
                if (r + i < n_rows) {
                    const BlockQ4 &blk = reinterpret_cast<const BlockQ4 *>(w + (r + i) * row_bytes)[b];
                    p[i] = _mm_loadu_si128(reinterpret_cast<const __m128i *>(blk.q));
                    std::memcpy(&dm[r + i], &blk.d, 4);
                }
            const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(p[0])),
                                                    _mm256_broadcastsi128_si256(p[1]), 1);
            _mm512_store_si512(out.codes[r], _mm512_and_si512(_mm512_srlv_epi64(both, shifts), _mm512_set1_epi8(0x0f)));
        }
        // [d | m << 16] per row: the low halves are the scales, the high ones the minimums.
        const __m512i v = _mm512_load_si512(dm);
        _mm512_store_ps(out.d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)));
        _mm512_store_ps(out.m, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16))));
    }
    static constexpr bool kSignedCodes = false;
};

// acc[r] (16 tokens) += the block's int32 sums of row r scaled by both blocks' factors.
template <typename K>
inline void scale_block(const int32_t (&c)[kTileRows][kTileTokens], const WeightTile &w, const PackedActivation &x,
                        __m512 (&acc)[kTileRows]) {
    const __m512 xd = _mm512_load_ps(x.d);
    const __m512 xs = _mm512_load_ps(x.sum);
    for (int r = 0; r < kTileRows; ++r) {
        const __m512 sums = _mm512_cvtepi32_ps(_mm512_load_si512(c[r]));
        acc[r] = _mm512_fmadd_ps(sums, _mm512_mul_ps(_mm512_set1_ps(w.d[r]), xd), acc[r]);
        if constexpr (K::kHasMin) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(w.m[r]), xs, acc[r]);
    }
}

inline void compiler_barrier() { asm volatile("" ::: "memory"); }

// C += A B, signed (Q8) or unsigned (Q4) weight codes times signed activations.
#define MST_TILE_DP(K, c, a, b)                               \
    do {                                                      \
        if constexpr (K::kSignedCodes) _tile_dpbssd(c, a, b); \
        else _tile_dpbusd(c, a, b);                           \
    } while (0)

// Rows [0, n_rows <= 16) of the tile over every block, into y (tokens < n_tok).
template <typename K>
void dot_tile(const uint8_t *w, int64_t row_bytes, int n_rows, int64_t n_blocks, const PackedActivation *x, int n_tok,
              float *y, int64_t ldy) {
    __m512 acc[kTileRows];
    for (__m512 &a : acc) a = _mm512_setzero_ps();
    // Two sets of a step's weights: the next step's are unpacked while this step's sums
    // are stored, before they are scaled.
    WeightTile wt[2][kStepBlocks];
    alignas(64) int32_t c[kStepBlocks][kTileRows][kTileTokens];
    auto load_step = [&](int64_t b0, WeightTile *out) {
        for (int i = 0; i < kStepBlocks && b0 + i < n_blocks; ++i) K::load(w, row_bytes, n_rows, b0 + i, out[i]);
    };
    load_step(0, wt[0]);
    for (int64_t b0 = 0, step = 0; b0 < n_blocks; b0 += kStepBlocks, ++step) {
        const WeightTile *cur = wt[step & 1];
        const int nb = n_blocks - b0 < kStepBlocks ? int(n_blocks - b0) : kStepBlocks;
        compiler_barrier();
        _tile_zero(MST_TMM_C0);
        _tile_loadd(MST_TMM_A0, cur[0].codes, kQuantBlock);
        _tile_loadd(MST_TMM_B0, x[b0].b, kTileTokens * 4);
        MST_TILE_DP(K, MST_TMM_C0, MST_TMM_A0, MST_TMM_B0);
        if (nb > 1) {
            _tile_zero(MST_TMM_C1);
            _tile_loadd(MST_TMM_A1, cur[1].codes, kQuantBlock);
            _tile_loadd(MST_TMM_B1, x[b0 + 1].b, kTileTokens * 4);
            MST_TILE_DP(K, MST_TMM_C1, MST_TMM_A1, MST_TMM_B1);
        }
        if (nb > 2) {
            _tile_zero(MST_TMM_C2);
            _tile_loadd(MST_TMM_A0, cur[2].codes, kQuantBlock);
            _tile_loadd(MST_TMM_B0, x[b0 + 2].b, kTileTokens * 4);
            MST_TILE_DP(K, MST_TMM_C2, MST_TMM_A0, MST_TMM_B0);
        }
        if (nb > 3) {
            _tile_zero(MST_TMM_C3);
            _tile_loadd(MST_TMM_A1, cur[3].codes, kQuantBlock);
            _tile_loadd(MST_TMM_B1, x[b0 + 3].b, kTileTokens * 4);
            MST_TILE_DP(K, MST_TMM_C3, MST_TMM_A1, MST_TMM_B1);
        }
        _tile_stored(MST_TMM_C0, c[0], kTileTokens * 4);
        if (nb > 1) _tile_stored(MST_TMM_C1, c[1], kTileTokens * 4);
        if (nb > 2) _tile_stored(MST_TMM_C2, c[2], kTileTokens * 4);
        if (nb > 3) _tile_stored(MST_TMM_C3, c[3], kTileTokens * 4);
        if (b0 + kStepBlocks < n_blocks) load_step(b0 + kStepBlocks, wt[(step + 1) & 1]);
        for (int i = 0; i < nb; ++i) scale_block<K>(c[i], cur[i], x[b0 + i], acc);
    }
    // Row r's 16 tokens go to y[t * ldy + r]: one scatter per row (15 * ldy fits an int32 index:
    // ldy is a product's row count).
    const __m512i token_offsets = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(int(ldy)));
    const __mmask16 tokens = __mmask16((1u << n_tok) - 1);
    for (int r = 0; r < n_rows; ++r) _mm512_mask_i32scatter_ps(y + r, tokens, token_offsets, acc[r], 4);
}

#undef MST_TILE_DP

// Where calls of few tokens go, set once per type by the table.
struct FewTokens {
    std::atomic<QuantKernels::DotRowsFn> fn{nullptr};
    std::atomic<int> max_tokens{1}, below{kAmxMaxTokens + 1};
};
FewTokens few_q8, few_q4;

template <typename K>
void dot_rows(const void *w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks, const QuantizedActivation *x,
              int64_t ldx, int n_tok, float *y, int64_t ldy) {
    const FewTokens &few = std::is_same_v<K, Q8> ? few_q8 : few_q4;
    if (n_tok < few.below.load(std::memory_order_relaxed)) {
        const QuantKernels::DotRowsFn fn = few.fn.load(std::memory_order_relaxed);
        const int step = few.max_tokens.load(std::memory_order_relaxed);
        for (int t = 0; t < n_tok; t += step)
            fn(w, row_bytes, n_rows, n_blocks, x + t * ldx, ldx, n_tok - t < step ? n_tok - t : step, y + t * ldy, ldy);
        return;
    }
    // Reused by the thread's later calls: a call's activations are n_blocks * 640 bytes.
    thread_local std::vector<PackedActivation> packed;
    if (packed.size() < size_t(n_blocks)) packed.resize(size_t(n_blocks));
    pack_activations(x, ldx, n_tok, n_blocks, packed.data());
    static const TileConfig config = make_config();
    _tile_loadconfig(&config);
    const auto *wb = static_cast<const uint8_t *>(w);
    for (int64_t r = 0; r < n_rows; r += kTileRows) {
        const int rows = int(n_rows - r < kTileRows ? n_rows - r : kTileRows);
        dot_tile<K>(wb + r * row_bytes, row_bytes, rows, n_blocks, packed.data(), n_tok, y + r, ldy);
    }
    // Unused tiles need not be saved at the next context switch.
    _tile_release();
}

}  // namespace
}  // namespace mst

#undef MST_TMM_C0
#undef MST_TMM_C1
#undef MST_TMM_C2
#undef MST_TMM_C3
#undef MST_TMM_A0
#undef MST_TMM_A1
#undef MST_TMM_B0
#undef MST_TMM_B1

#pragma GCC pop_options

namespace mst {
namespace {
void set_few_tokens(FewTokens &few, QuantKernels::DotRowsFn fn, int max_tokens, int min_tokens) {
    few.fn.store(fn);
    few.max_tokens.store(max_tokens);
    few.below.store(min_tokens);
}
}  // namespace

QuantKernels::DotRowsFn quant_dot_rows_q8_amx_int8(QuantKernels::DotRowsFn few_tokens, int few_max_tokens,
                                                   int min_tokens) {
    set_few_tokens(few_q8, few_tokens, few_max_tokens, min_tokens);
    return dot_rows<Q8>;
}
QuantKernels::DotRowsFn quant_dot_rows_q4_amx_int8(QuantKernels::DotRowsFn few_tokens, int few_max_tokens,
                                                   int min_tokens) {
    set_few_tokens(few_q4, few_tokens, few_max_tokens, min_tokens);
    return dot_rows<Q4>;
}
}  // namespace mst

#endif  // __x86_64__
