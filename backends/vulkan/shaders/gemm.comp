#version 450
// y[t][r] = sum_c W[r][c] x[t][c] for a batch of tokens (prefill): a tiled GEMM.
// A workgroup computes a tile of BM weight rows x BN tokens. It walks the columns in steps
// of BK = 32 (one quant block): each step decodes the BM x BK weight tile once into
// shared memory and stages the BN x BK activation tile beside it, then every thread
// accumulates its outputs from shared memory. So each weight is read and decoded once per
// BN tokens, not once per 4 as in matmul.comp's matrix-vector kernel.
// Two inner products over the staged tiles:
// - portable (no extension): 256 threads, each 4 rows x 4 tokens in float;
// - COOPMAT (VK_NV_cooperative_matrix, where the device has it, 16x16x16 f16 x f16 + f32):
//   4 subgroups of 32, each a 32 x 32 quarter of the tile as 2 x 2 matrices; the tiles
//   are staged as f16, the sums are float. PRECISION (specialization constant 0,
//   MST_VULKAN_COOPMAT_PRECISION) split, the default: each activation is staged as
//   hi = f16_head(x) (its leading 11 bits, common.glsl) and lo = f16(x - hi) and both
//   multiplied (W*hi + W*lo), as are the weights of the types f16 does not hold (f32, q8:
//   Wlo*hi added), so the staging's rounding stays near float's instead of f16's 2^-11;
//   q4 stays one f16 each but under exact (SPLIT_X below; docs/gpu_prefill.md).
//   (GL_NV_cooperative_matrix because the glslang of Debian 12 has no GL_KHR_cooperative_matrix.)
// GROUPED (gemm_grouped_*): the routed experts of a prefill batch, one dispatch for every
// expert whose weights share a buffer (op_experts_grouped.cpp). Workgroup row y takes
// tile y of a table: where its expert's weights start in the bound buffer (in words), its
// first token row in x and y, and its token count (at most BN). Each expert's tokens are a
// contiguous slice of x, so a tile is a dense GEMM tile of its own expert.
// SWIGLU (gemm_grouped_swiglu_*): the gate and up products of a tile at once, from one
// staged activation tile, both weights in the bound buffer (the table's fourth word is
// where the up weights start); y = silu(gate) * up, so neither product goes to memory.
//! variant gemm_f32 -DW_F32
//! variant gemm_f16 -DW_F16
//! variant gemm_bf16 -DW_BF16
//! variant gemm_q8 -DW_Q8
//! variant gemm_q4 -DW_Q4
//! variant gemm_coop_f32 -DW_F32 -DCOOPMAT
//! variant gemm_coop_f16 -DW_F16 -DCOOPMAT
//! variant gemm_coop_bf16 -DW_BF16 -DCOOPMAT
//! variant gemm_coop_q8 -DW_Q8 -DCOOPMAT
//! variant gemm_coop_q4 -DW_Q4 -DCOOPMAT
//! variant gemm_serial_f32 -DW_F32 -DSERIAL_STAGING
//! variant gemm_serial_f16 -DW_F16 -DSERIAL_STAGING
//! variant gemm_serial_bf16 -DW_BF16 -DSERIAL_STAGING
//! variant gemm_serial_q8 -DW_Q8 -DSERIAL_STAGING
//! variant gemm_serial_q4 -DW_Q4 -DSERIAL_STAGING
//! variant gemm_serial_coop_f32 -DW_F32 -DCOOPMAT -DSERIAL_STAGING
//! variant gemm_serial_coop_f16 -DW_F16 -DCOOPMAT -DSERIAL_STAGING
//! variant gemm_serial_coop_bf16 -DW_BF16 -DCOOPMAT -DSERIAL_STAGING
//! variant gemm_serial_coop_q8 -DW_Q8 -DCOOPMAT -DSERIAL_STAGING
//! variant gemm_serial_coop_q4 -DW_Q4 -DCOOPMAT -DSERIAL_STAGING
//! variant gemm_grouped_swiglu_f32 -DW_F32 -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_f16 -DW_F16 -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_bf16 -DW_BF16 -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_q8 -DW_Q8 -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_q4 -DW_Q4 -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_coop_f32 -DW_F32 -DCOOPMAT -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_coop_f16 -DW_F16 -DCOOPMAT -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_coop_bf16 -DW_BF16 -DCOOPMAT -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_coop_q8 -DW_Q8 -DCOOPMAT -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_coop_q4 -DW_Q4 -DCOOPMAT -DGROUPED -DSWIGLU
//! variant gemm_grouped_f32 -DW_F32 -DGROUPED
//! variant gemm_grouped_f16 -DW_F16 -DGROUPED
//! variant gemm_grouped_bf16 -DW_BF16 -DGROUPED
//! variant gemm_grouped_q8 -DW_Q8 -DGROUPED
//! variant gemm_grouped_q4 -DW_Q4 -DGROUPED
//! variant gemm_grouped_coop_f32 -DW_F32 -DCOOPMAT -DGROUPED
//! variant gemm_grouped_coop_f16 -DW_F16 -DCOOPMAT -DGROUPED
//! variant gemm_grouped_coop_bf16 -DW_BF16 -DCOOPMAT -DGROUPED
//! variant gemm_grouped_coop_q8 -DW_Q8 -DCOOPMAT -DGROUPED
//! variant gemm_grouped_coop_q4 -DW_Q4 -DCOOPMAT -DGROUPED
#extension GL_GOOGLE_include_directive : require
#ifdef COOPMAT
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#include "common.glsl"

#define BM 64
#define BN 64
#define BK 32
#ifdef COOPMAT
#define THREADS 128
// Row pitch of the staged tiles in elements: 16-byte aligned rows, shifted banks.
#define KP (BK + 8)
#define CP (BM + 4)
#define STAGE float16_t
layout(constant_id = 0) const uint PRECISION = 1u;  // 0 f16, 1 split, 2 exact (gemm_precision.h)
// Which halves split. Under split (1), by weight type, as the CPU backend chooses its
// activations' precision (README, MST_CPU_ACT_BITS): q4 weights take one f16 each (the CPU's
// default gives them 8-bit activations: a 4-bit step dwarfs f16's rounding); f16 and bf16
// split the activations (f16 holds those weights exactly, in its normal range); q8 (d*q, up
// to 19 significant bits) and f32 split both. Under exact (2) q4 splits both as well (d*q + m
// is no f16 either), as the CPU's 16-bit activations would have it.
const bool SPLIT = PRECISION != 0u;
#ifdef W_Q4
const bool SPLIT_X = PRECISION == 2u;
const bool SPLIT_W = PRECISION == 2u;
#elif defined(W_F32) || defined(W_Q8)
const bool SPLIT_X = SPLIT;
const bool SPLIT_W = SPLIT;
#else
const bool SPLIT_X = SPLIT;
const bool SPLIT_W = false;
#endif
#else
#define THREADS 256
#define KP (BK + 1)
#define STAGE float
#endif
layout(local_size_x = THREADS) in;

#include "gemm_load.glsl"

#ifdef COOPMAT
// Split: each tile's lo half after its hi half (W_LO, X_LO elements on).
const uint W_LO = SPLIT_W ? BM * KP : 0u, X_LO = SPLIT_X ? BN * KP : 0u;
#else
const uint W_LO = 0u, X_LO = 0u;
#endif
shared STAGE ws[BM * KP + W_LO];  // [row][k]
shared STAGE xs[BN * KP + X_LO];  // [token][k]
#ifdef SWIGLU
shared STAGE us[BM * KP + W_LO];  // the up weights, [row][k]
#endif

// Staging, software-pipelined: each thread fetches its part of the next step's tiles
// (8 consecutive elements of a row, 4 threads a row) into registers while the current
// step's products run from shared memory, then stores them after the step's barrier, so
// the global loads and decoding overlap the arithmetic instead of preceding it.
#define W_SLOTS (BM * 4 / THREADS)
#define X_SLOTS (BN * 4 / THREADS)
float w_next[W_SLOTS][8], x_next[X_SLOTS][8];
#ifdef SWIGLU
float u_next[W_SLOTS][8];
#endif

void fetch(uint r0, uint t0, uint k0) {
    const uint tid = gl_LocalInvocationIndex;
    for (uint i = 0; i < W_SLOTS; ++i) {
        const uint slot = tid + i * THREADS, lr = slot >> 2, c = (slot & 3u) * 8u;
        if (r0 + lr < pc.rows) load_weights8(r0 + lr, k0 + c, w_next[i]);
        else w_next[i] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
#ifdef SWIGLU
        const uint gate_base = wbase;
        wbase = up_base;
        if (r0 + lr < pc.rows) load_weights8(r0 + lr, k0 + c, u_next[i]);
        else u_next[i] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        wbase = gate_base;
#endif
    }
    for (uint i = 0; i < X_SLOTS; ++i) {
        const uint slot = tid + i * THREADS, lt = slot >> 2, c = (slot & 3u) * 8u;
        if (t0 + lt < n_tok) load_x8(t0 + lt, k0 + c, x_next[i]);
        else x_next[i] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    }
}

// A staged element's hi half under SPLIT (its leading bits, common.glsl's f16_head), or
// the element rounded once without it; and its lo half (what the hi half leaves).
STAGE head(float v, bool split) { return STAGE(split ? f16_head(v) : v); }
STAGE rest(float v) { return STAGE(v - f16_head(v)); }

void store_fetched() {
    const uint tid = gl_LocalInvocationIndex;
    for (uint i = 0; i < W_SLOTS; ++i) {
        const uint slot = tid + i * THREADS, lr = slot >> 2, c = (slot & 3u) * 8u;
        for (uint j = 0; j < 8u; ++j) ws[lr * KP + c + j] = head(w_next[i][j], W_LO > 0u);
#ifdef SWIGLU
        for (uint j = 0; j < 8u; ++j) us[lr * KP + c + j] = head(u_next[i][j], W_LO > 0u);
#endif
        if (W_LO > 0u) {
            for (uint j = 0; j < 8u; ++j) ws[W_LO + lr * KP + c + j] = rest(w_next[i][j]);
#ifdef SWIGLU
            for (uint j = 0; j < 8u; ++j) us[W_LO + lr * KP + c + j] = rest(u_next[i][j]);
#endif
        }
    }
    for (uint i = 0; i < X_SLOTS; ++i) {
        const uint slot = tid + i * THREADS, lt = slot >> 2, c = (slot & 3u) * 8u;
        for (uint j = 0; j < 8u; ++j) xs[lt * KP + c + j] = head(x_next[i][j], X_LO > 0u);
        if (X_LO > 0u)
            for (uint j = 0; j < 8u; ++j) xs[X_LO + lt * KP + c + j] = rest(x_next[i][j]);
    }
}

// The first step's fetch.
void begin_steps(uint r0, uint t0) {
#ifndef SERIAL_STAGING
    fetch(r0, t0, 0u);
#endif
}

// Step k0's tiles into shared memory (a barrier after), and the next step's fetch begun.
// SERIAL_STAGING (gemm_serial_*, MST_VULKAN_GEMM_PREFETCH=0): each step fetched only when
// it begins, as before the prefetch, to compare.
void stage_step(uint r0, uint t0, uint k0) {
#ifdef SERIAL_STAGING
    fetch(r0, t0, k0);
#endif
    store_fetched();
    barrier();
#ifndef SERIAL_STAGING
    if (k0 + BK < pc.cols) fetch(r0, t0, k0 + BK);
#endif
}

#ifdef COOPMAT
shared float cs[BN * CP];  // the finished tile, [token][row]

#define SUM fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define F16 fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>

// acc[i][j] += a[i] b[j] over one 16-column slice.
void add_products(inout SUM acc[2][2], const F16 a[2], const F16 b[2]) {
    for (uint i = 0; i < 2u; ++i)
        for (uint j = 0; j < 2u; ++j) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
}

// The slice at column kk of the staged weights (us's when `up`, else ws's) times the staged
// activations (b, and their lo halves b_lo under SPLIT), added to acc: W*hi, and under the
// split W*lo and, for the split weight types, Wlo*hi.
void add_slice(inout SUM acc[2][2], bool up, uint mr, uint mt, uint kk, const F16 b[2], const F16 b_lo[2]) {
    F16 a[2];
    for (uint lo = 0; lo < (W_LO > 0u ? 2u : 1u); ++lo) {
        const uint at = lo * W_LO;
#ifdef SWIGLU
        if (up) {
            for (uint i = 0; i < 2u; ++i) coopMatLoadNV(a[i], us, at + (mr + 16u * i) * KP + kk, KP, false);
        } else
#endif
            for (uint i = 0; i < 2u; ++i) coopMatLoadNV(a[i], ws, at + (mr + 16u * i) * KP + kk, KP, false);
        add_products(acc, a, b);
        if (lo == 0u && X_LO > 0u) add_products(acc, a, b_lo);
    }
}

void main() {
    const uint r0 = gl_WorkGroupID.x * BM, t0 = select_tile();
    if (n_tok == 0u) return;  // a spare tile of a device-built table's worst-case grid (uniform: before any barrier)
    const uint sg = gl_LocalInvocationIndex / 32u;
    const uint mr = (sg & 1u) * 32u, mt = (sg >> 1) * 32u;  // this subgroup's quarter
    SUM acc[2][2];
    for (uint i = 0; i < 2u; ++i)
        for (uint j = 0; j < 2u; ++j) acc[i][j] = SUM(0.0);
#ifdef SWIGLU
    SUM acc_up[2][2];
    for (uint i = 0; i < 2u; ++i)
        for (uint j = 0; j < 2u; ++j) acc_up[i][j] = SUM(0.0);
#endif
    begin_steps(r0, t0);
    for (uint k0 = 0; k0 < pc.cols; k0 += BK) {
        stage_step(r0, t0, k0);
        // A subgroup whose 32 tokens lie past the tile's count (an expert of few tokens in
        // a grouped dispatch) has nothing to add: it only helps stage.
        for (uint kk = 0; kk < BK && mt < n_tok; kk += 16u) {
            // A: rows x k, row-major in ws. B: k x tokens, xs holds it column by column.
            F16 b[2], b_lo[2];
            for (uint j = 0; j < 2u; ++j) coopMatLoadNV(b[j], xs, (mt + 16u * j) * KP + kk, KP, true);
            if (X_LO > 0u)
                for (uint j = 0; j < 2u; ++j) coopMatLoadNV(b_lo[j], xs, X_LO + (mt + 16u * j) * KP + kk, KP, true);
            add_slice(acc, false, mr, mt, kk, b, b_lo);
#ifdef SWIGLU
            add_slice(acc_up, true, mr, mt, kk, b, b_lo);
#endif
        }
        barrier();
    }
    // Element (row m, token n) of a product at cs[n * CP + m]: column-major.
#ifdef SWIGLU
    // The gate's tile through cs into registers, then the up's beside it.
    float gate[BM * BN / THREADS];
    for (uint i = 0; i < 2u; ++i)
        for (uint j = 0; j < 2u; ++j) coopMatStoreNV(acc[i][j], cs, (mt + 16u * j) * CP + mr + 16u * i, CP, true);
    barrier();
    for (uint e = gl_LocalInvocationIndex, n = 0; e < BM * BN; e += THREADS, ++n) gate[n] = cs[(e / BM) * CP + e % BM];
    barrier();
    for (uint i = 0; i < 2u; ++i)
        for (uint j = 0; j < 2u; ++j) coopMatStoreNV(acc_up[i][j], cs, (mt + 16u * j) * CP + mr + 16u * i, CP, true);
    barrier();
    for (uint e = gl_LocalInvocationIndex, n = 0; e < BM * BN; e += THREADS, ++n) {
        const uint lt = e / BM, lr = e % BM;
        if (r0 + lr < pc.rows && t0 + lt < n_tok)
            y[(t_base + t0 + lt) * pc.rows + r0 + lr] = silu(gate[n]) * cs[lt * CP + lr];
    }
#else
    for (uint i = 0; i < 2u; ++i)
        for (uint j = 0; j < 2u; ++j) coopMatStoreNV(acc[i][j], cs, (mt + 16u * j) * CP + mr + 16u * i, CP, true);
    barrier();
    for (uint e = gl_LocalInvocationIndex; e < BM * BN; e += THREADS) {
        const uint lt = e / BM, lr = e % BM;
        if (r0 + lr < pc.rows && t0 + lt < n_tok) y[(t_base + t0 + lt) * pc.rows + r0 + lr] = cs[lt * CP + lr];
    }
#endif
}
#else
void main() {
    const uint r0 = gl_WorkGroupID.x * BM, t0 = select_tile();
    if (n_tok == 0u) return;  // a spare tile of a device-built table's worst-case grid (uniform: before any barrier)
    // Rows tr + 16i, tokens tt + 16j: neighbouring threads take neighbouring rows, so the
    // staged weights are read without bank conflicts and y is written in runs of 16.
    const uint tr = gl_LocalInvocationIndex & 15u, tt = gl_LocalInvocationIndex >> 4;
    float acc[4][4], acc_up[4][4];
    for (uint i = 0; i < 4u; ++i)
        for (uint j = 0; j < 4u; ++j) acc[i][j] = acc_up[i][j] = 0.0;
    begin_steps(r0, t0);
    for (uint k0 = 0; k0 < pc.cols; k0 += BK) {
        stage_step(r0, t0, k0);
        for (uint k = 0; k < BK && tt < n_tok; ++k) {  // tokens tt + 16j all past the count: none to add
            float a[4], b[4];
            for (uint i = 0; i < 4u; ++i) a[i] = ws[(tr + 16u * i) * KP + k];
            for (uint j = 0; j < 4u; ++j) b[j] = xs[(tt + 16u * j) * KP + k];
            for (uint i = 0; i < 4u; ++i)
                for (uint j = 0; j < 4u; ++j) acc[i][j] += a[i] * b[j];
#ifdef SWIGLU
            for (uint i = 0; i < 4u; ++i) a[i] = us[(tr + 16u * i) * KP + k];
            for (uint i = 0; i < 4u; ++i)
                for (uint j = 0; j < 4u; ++j) acc_up[i][j] += a[i] * b[j];
#endif
        }
        barrier();
    }
    for (uint j = 0; j < 4u; ++j) {
        const uint t = t0 + tt + 16u * j;
        if (t >= n_tok) continue;
        for (uint i = 0; i < 4u; ++i) {
            const uint r = r0 + tr + 16u * i;
#ifdef SWIGLU
            if (r < pc.rows) y[(t_base + t) * pc.rows + r] = silu(acc[i][j]) * acc_up[i][j];
#else
            if (r < pc.rows) y[(t_base + t) * pc.rows + r] = acc[i][j];
#endif
        }
    }
}
#endif
