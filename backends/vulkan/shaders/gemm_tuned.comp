#version 450
// The prefill GEMM of gemm.comp (y[t][r] = sum_c W[r][c] x[t][c], same bindings, push
// constants and grouped tile table, gemm_load.glsl) with a tiling chosen at run time:
// MST_VULKAN_COOP_TUNING=MIxNJxSPLITKxBK (op_gemm.cpp, gemm_tuning.h) passes the four as
// specialization constants, so one build carries every tuning and one GPU run can compare
// them (bench_vulkan_prefill --sweep). Main's kernel (gemm.comp) stays the default until a
// GPU has named the best tuning.
//
// The tiling (the gpu-coop rewrite, docs/gpu_prefill.md): a workgroup takes a tile of
// BN = 64 tokens (the dispatch's grid and the grouped tile table count in those) in passes
// of TN tokens (32 or 64: an expert's ~32-token tile fills a 32-token pass), each pass
// BM = 16 MI SR weight rows x TN tokens. Its SPLITK groups of 4 subgroups of 32 threads
// (local_size 128 x SPLITK) each cover the whole pass, a subgroup MI x NJ sums of 16 x 16
// (SR subgroups along the rows, ST = TN / 16 NJ along the tokens), and take turns over a
// step's BK columns 16 at a time; their sums are added through shared memory at the end
// (more warps hide the loads' latency without more registers a thread). The sums' shared
// block (cs) lies over the staged tiles, which are dead once the columns are done, so a
// workgroup needs the larger of the two, not both: 128-row tiles fit NVIDIA's 48 KiB. A
// step's tiles are staged as f16 packed 8 to a uvec4 (one 16-byte shared store per 8
// elements) and the next step's are fetched, packed, during the current products.
// Subgroups whose tokens all lie past the tile's count (an expert's ~32-token tile) skip
// their products; SWIGLU's silu(gate) * up is taken on the sums.
//
// PRECISION (specialization constant 4, MST_VULKAN_COOPMAT_PRECISION) split, the default:
// each activation is staged twice, hi = f16_head(x) (its leading 11 bits, common.glsl) and
// lo = f16(x - hi), in a second half of its tile, and the products take W*hi + W*lo; the
// weights of the types f16 does not hold (f32, q8) are split alike and add Wlo*hi; q4 stays
// one f16 each but under exact (SPLIT_X). f16: one f16 each, as before the split.
//
// COOPMAT: the 16 x 16 x 16 products are VK_NV_cooperative_matrix's (f16 x f16 + f32).
// Without it the same tiling runs with the products in float, each thread holding 8
// elements of each 16 x 16 sum (from the same f16-staged tiles): slow, but the staging,
// the split over columns, the skipped subgroups and their reduction are the cooperative
// kernel's and so are tested where no device has cooperative matrices (lavapipe).
// (GL_NV_cooperative_matrix because the glslang of Debian 12 has no GL_KHR_cooperative_matrix.)
//! variant gemm_tuned_f32 -DW_F32
//! variant gemm_tuned_f16 -DW_F16
//! variant gemm_tuned_bf16 -DW_BF16
//! variant gemm_tuned_q8 -DW_Q8
//! variant gemm_tuned_q4 -DW_Q4
//! variant gemm_grouped_tuned_f32 -DW_F32 -DGROUPED
//! variant gemm_grouped_tuned_f16 -DW_F16 -DGROUPED
//! variant gemm_grouped_tuned_bf16 -DW_BF16 -DGROUPED
//! variant gemm_grouped_tuned_q8 -DW_Q8 -DGROUPED
//! variant gemm_grouped_tuned_q4 -DW_Q4 -DGROUPED
//! variant gemm_grouped_swiglu_tuned_f32 -DW_F32 -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_tuned_f16 -DW_F16 -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_tuned_bf16 -DW_BF16 -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_tuned_q8 -DW_Q8 -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_tuned_q4 -DW_Q4 -DGROUPED -DSWIGLU
//! variant gemm_tuned_coop_f32 -DW_F32 -DCOOPMAT
//! variant gemm_tuned_coop_f16 -DW_F16 -DCOOPMAT
//! variant gemm_tuned_coop_bf16 -DW_BF16 -DCOOPMAT
//! variant gemm_tuned_coop_q8 -DW_Q8 -DCOOPMAT
//! variant gemm_tuned_coop_q4 -DW_Q4 -DCOOPMAT
//! variant gemm_grouped_tuned_coop_f32 -DW_F32 -DCOOPMAT -DGROUPED
//! variant gemm_grouped_tuned_coop_f16 -DW_F16 -DCOOPMAT -DGROUPED
//! variant gemm_grouped_tuned_coop_bf16 -DW_BF16 -DCOOPMAT -DGROUPED
//! variant gemm_grouped_tuned_coop_q8 -DW_Q8 -DCOOPMAT -DGROUPED
//! variant gemm_grouped_tuned_coop_q4 -DW_Q4 -DCOOPMAT -DGROUPED
//! variant gemm_grouped_swiglu_tuned_coop_f32 -DW_F32 -DCOOPMAT -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_tuned_coop_f16 -DW_F16 -DCOOPMAT -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_tuned_coop_bf16 -DW_BF16 -DCOOPMAT -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_tuned_coop_q8 -DW_Q8 -DCOOPMAT -DGROUPED -DSWIGLU
//! variant gemm_grouped_swiglu_tuned_coop_q4 -DW_Q4 -DCOOPMAT -DGROUPED -DSWIGLU
#extension GL_GOOGLE_include_directive : require
#ifdef COOPMAT
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#include "common.glsl"

// The tuning (op_gemm.cpp checks it against gemm_tuning.h's rules and the device's
// shared memory before any pipeline is made): 16 x 16 sums a subgroup along rows (MI) and
// tokens (NJ, 1, 2 or 4), groups splitting a step's columns, columns a step (a multiple of
// 32 and of 16 SPLITK), tokens a pass (TN, 32 or 64, at least 16 NJ).
layout(constant_id = 0) const uint MI = 2;
layout(constant_id = 1) const uint NJ = 2;
layout(constant_id = 2) const uint SPLITK = 2;
layout(constant_id = 3) const uint BK = 32;
layout(constant_id = 4) const uint PRECISION = 1u;  // 0 f16, 1 split, 2 exact (gemm_precision.h)
layout(constant_id = 5) const uint TN = 64;
// Staged copies of the tiles (1 or 2). With 2 the next step is stored into the other copy
// right after this step's products, so a step takes one barrier instead of two (the
// products of step k + 1 need not wait for every thread to leave step k's tiles first).
layout(constant_id = 6) const uint STAGES = 1;
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
layout(local_size_x = 128, local_size_y_id = 2) in;

#define BN 64
const uint ST = TN / (16u * NJ);  // the 4 subgroups: ST along a pass's tokens, SR along the rows
const uint SR = 4u / ST;
const uint BM = 16u * MI * SR;
const uint THREADS = 128u * SPLITK;
const uint N_SUMS = MI * NJ;  // 16 x 16 sums a subgroup (one name: array types of it must match)
const uint CHUNKS = BK / 8u;  // 8-element pieces of a staged row
const uint KP4 = CHUNKS + 1u;  // row pitch in uvec4: the 8 rows a 16 x 16 load reads start in different banks
const uint CP = BM + 4u;       // row pitch of cs in floats
const uint W_SLOTS = BM * CHUNKS / THREADS;
const uint X_SLOTS = TN * CHUNKS / THREADS;
// Under the split, where a tile's lo half starts (after its hi half); 0: none.
const uint W_LO = SPLIT_W ? BM * KP4 : 0u;
const uint X_LO = SPLIT_X ? TN * KP4 : 0u;

#include "gemm_load.glsl"

// One shared block: during the columns the staged tiles, 8 f16 a uvec4 (weights [row][k / 8]
// from WS, the up weights alike from US under SWIGLU, activations [token][k / 8] from XS);
// after them the sums (cs), column-major floats: (row m, token n) at float n * CP + m
// (CP a multiple of 4: a 16 x 16 sum's column starts on a uvec4).
const uint WS = 0u;
#ifdef SWIGLU
const uint US = WS + BM * KP4 + W_LO;
const uint XS = US + BM * KP4 + W_LO;
#else
const uint XS = WS + BM * KP4 + W_LO;
#endif
const uint STAGED = XS + TN * KP4 + X_LO;  // one copy of the staged tiles; copy s from s * STAGED
const uint CS4 = TN * CP / 4u;
shared uvec4 sm[STAGES * STAGED > CS4 ? STAGES * STAGED : CS4];

float cs_get(uint i) { return uintBitsToFloat(sm[i / 4u][i % 4u]); }
void cs_set(uint i, float v) { sm[i / 4u][i % 4u] = floatBitsToUint(v); }

// 8 values as f16: under the split their hi halves (their leading bits, common.glsl's
// f16_head), else each rounded once.
uvec4 pack_piece(const float v[8], bool split) {
    uvec4 p;
    for (uint k = 0; k < 4u; ++k) {
        const vec2 pair = vec2(v[2u * k], v[2u * k + 1u]);
        p[k] = packHalf2x16(split ? vec2(f16_head(pair.x), f16_head(pair.y)) : pair);
    }
    return p;
}

// What the 8 values' hi halves leave (the lo half of the split), as f16.
uvec4 pack_rest(const float v[8]) {
    uvec4 lo;
    for (uint k = 0; k < 4u; ++k)
        lo[k] = packHalf2x16(vec2(v[2u * k] - f16_head(v[2u * k]), v[2u * k + 1u] - f16_head(v[2u * k + 1u])));
    return lo;
}

const float zeros8[8] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);

// Weight row r's 8 values at c0 from the weights at word `base`, zero past the row's or the
// matrix's end (a step of 64 may run a whole block past the last one).
void weight_values(uint base, uint r, uint c0, out float v[8]) {
    v = zeros8;
    wbase = base;
    if (r < pc.rows && c0 < pc.cols) load_weights8(r, c0, v);
}

// Each thread's share of the next step's tiles, fetched during the current step's products:
// f16 pieces, and under the split their lo halves (arrays of 1 when a tile has none).
uvec4 w_next[W_SLOTS], x_next[X_SLOTS];
uvec4 w_lo_next[SPLIT_W ? W_SLOTS : 1u], x_lo_next[SPLIT_X ? X_SLOTS : 1u];
#ifdef SWIGLU
uvec4 u_next[W_SLOTS], u_lo_next[SPLIT_W ? W_SLOTS : 1u];
#endif

void fetch(uint r0, uint t0, uint k0) {
    const uint tid = gl_LocalInvocationIndex, gate_base = wbase;
    for (uint i = 0; i < W_SLOTS; ++i) {
        const uint slot = tid + i * THREADS, lr = slot / CHUNKS, c = (slot % CHUNKS) * 8u;
        float v[8];
        weight_values(gate_base, r0 + lr, k0 + c, v);
        w_next[i] = pack_piece(v, SPLIT_W);
        if (SPLIT_W) w_lo_next[i] = pack_rest(v);
#ifdef SWIGLU
        weight_values(up_base, r0 + lr, k0 + c, v);
        u_next[i] = pack_piece(v, SPLIT_W);
        if (SPLIT_W) u_lo_next[i] = pack_rest(v);
#endif
    }
    wbase = gate_base;
    for (uint i = 0; i < X_SLOTS; ++i) {
        const uint slot = tid + i * THREADS, lt = slot / CHUNKS, c = (slot % CHUNKS) * 8u;
        float v[8] = zeros8;
        if (t0 + lt < n_tok && k0 + c < pc.cols) load_x8(t0 + lt, k0 + c, v);
        x_next[i] = pack_piece(v, SPLIT_X);
        if (SPLIT_X) x_lo_next[i] = pack_rest(v);
    }
}

// To the staged copy from sb (0 or STAGED).
void store_fetched(uint sb) {
    const uint tid = gl_LocalInvocationIndex;
    for (uint i = 0; i < W_SLOTS; ++i) {
        const uint slot = tid + i * THREADS, at = (slot / CHUNKS) * KP4 + slot % CHUNKS;
        sm[sb + WS + at] = w_next[i];
        if (SPLIT_W) sm[sb + WS + W_LO + at] = w_lo_next[i];
#ifdef SWIGLU
        sm[sb + US + at] = u_next[i];
        if (SPLIT_W) sm[sb + US + W_LO + at] = u_lo_next[i];
#endif
    }
    for (uint i = 0; i < X_SLOTS; ++i) {
        const uint slot = tid + i * THREADS, at = (slot / CHUNKS) * KP4 + slot % CHUNKS;
        sm[sb + XS + at] = x_next[i];
        if (SPLIT_X) sm[sb + XS + X_LO + at] = x_lo_next[i];
    }
}

#ifdef COOPMAT
#define SUM fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define F16 fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>

SUM sum_zero() { return SUM(0.0); }

// A sum to cs at float `at` (its row 0, token 0; a multiple of 4), and back: through sm,
// whose element is a uvec4 of 4 floats, so offset and stride count uvec4.
void sum_store(const SUM s, uint at) { coopMatStoreNV(s, sm, at / 4u, CP / 4u, true); }

SUM sum_add_stored(const SUM s, uint at) {
    SUM other;
    coopMatLoadNV(other, sm, at / 4u, CP / 4u, true);
    return s + other;
}

SUM swiglu_sums(SUM gate, const SUM up) {
    for (int e = 0; e < gate.length(); ++e) gate[e] = silu(gate[e]) * up[e];
    return gate;
}
#else
// A 16 x 16 sum over a subgroup's 32 threads: element q of lane l is element 32q + l of
// the sum, (row (32q + l) % 16, token (32q + l) / 16).
struct Sum16 {
    float e[8];
};
#define SUM Sum16

uint lane() { return gl_LocalInvocationID.x % 32u; }

SUM sum_zero() {
    SUM s;
    for (uint q = 0; q < 8u; ++q) s.e[q] = 0.0;
    return s;
}

void sum_store(const SUM s, uint at) {
    for (uint q = 0; q < 8u; ++q) {
        const uint id = 32u * q + lane();
        cs_set(at + (id / 16u) * CP + id % 16u, s.e[q]);
    }
}

SUM sum_add_stored(SUM s, uint at) {
    for (uint q = 0; q < 8u; ++q) {
        const uint id = 32u * q + lane();
        s.e[q] += cs_get(at + (id / 16u) * CP + id % 16u);
    }
    return s;
}

SUM swiglu_sums(SUM gate, const SUM up) {
    for (uint q = 0; q < 8u; ++q) gate.e[q] = silu(gate.e[q]) * up.e[q];
    return gate;
}

// The staged weight piece at `at` of the weights' tile (of the up weights' when `up`) of
// the copy from sb.
uvec4 staged_weights(bool up, uint sb, uint at) {
#ifdef SWIGLU
    if (up) return sm[sb + US + at];
#endif
    return sm[sb + WS + at];
}

// Sum of the 8 products of two f16 pieces (each exact in float, as a tensor core's).
float dot8(uvec4 a, uvec4 b) {
    float t = 0.0;
    for (uint h = 0; h < 4u; ++h) t += dot(unpackHalf2x16(a[h]), unpackHalf2x16(b[h]));
    return t;
}

// Staged weights (from us when `up`) times staged activations over 16 columns (2 uvec4
// from kk), rows ar.. and tokens bt.., added to s; under the split the lo halves' products
// too, as the cooperative kernel adds them.
SUM product_add(SUM s, bool up, uint sb, uint ar, uint bt, uint kk) {
    for (uint q = 0; q < 8u; ++q) {
        const uint id = 32u * q + lane(), m = id % 16u, n = id / 16u;
        float t = s.e[q];
        for (uint u = 0; u < 2u; ++u) {
            const uint wa = (ar + m) * KP4 + kk + u, xa = (bt + n) * KP4 + kk + u;
            const uvec4 a = staged_weights(up, sb, wa), b = sm[sb + XS + xa];
            t += dot8(a, b);
            if (X_LO > 0u) t += dot8(a, sm[sb + XS + X_LO + xa]);
            if (W_LO > 0u) t += dot8(staged_weights(up, sb, W_LO + wa), b);
        }
        s.e[q] = t;
    }
    return s;
}
#endif

// Sums (i, j) of this subgroup to cs: rows mr + 16i, tokens mt + 16j (only its nj blocks
// that hold tokens). Loops run to the constants MI and NJ, so that a driver unrolls them
// and keeps the sums in registers (no dynamic index into them).
void store_sums(const SUM acc[N_SUMS], uint mr, uint mt, uint nj) {
    for (uint i = 0; i < MI; ++i)
        for (uint j = 0; j < NJ; ++j)
            if (j < nj) sum_store(acc[i * NJ + j], (mt + 16u * j) * CP + mr + 16u * i);
}

// The other column groups' sums added to group 0's (split K): each group in turn stores
// through cs and group 0 adds them. Every thread passes the same barriers.
void reduce_split_k(inout SUM acc[N_SUMS], uint group, uint mr, uint mt, uint nj) {
    for (uint g = 1; g < SPLITK; ++g) {
        if (group == g) store_sums(acc, mr, mt, nj);
        barrier();
        if (group == 0u)
            for (uint i = 0; i < MI; ++i)
                for (uint j = 0; j < NJ; ++j)
                    if (j < nj) acc[i * NJ + j] = sum_add_stored(acc[i * NJ + j], (mt + 16u * j) * CP + mr + 16u * i);
        barrier();
    }
}

// One pass: weight rows r0.. x tokens tp.. (pass_tokens of them, after t_base), written to y.
void run_pass(uint r0, uint tp, uint pass_tokens, uint group, uint mr, uint mt) {
    // The subgroup's 16-token blocks that hold tokens (0 where all lie past the count): the
    // same for the whole subgroup, so the cooperative operations under it stay uniform.
    const uint nj = pass_tokens > mt ? min(NJ, (pass_tokens - mt + 15u) / 16u) : 0u;
    SUM acc[N_SUMS];
    for (uint i = 0; i < N_SUMS; ++i) acc[i] = sum_zero();
#ifdef SWIGLU
    SUM acc_up[N_SUMS];
    for (uint i = 0; i < N_SUMS; ++i) acc_up[i] = sum_zero();
#endif
    fetch(r0, tp, 0u);
    if (STAGES == 2u) {
        store_fetched(0u);
        barrier();
    }
    uint sb = 0u;  // the staged copy this step's products read
    for (uint k0 = 0; k0 < pc.cols; k0 += BK) {
        const bool more = k0 + BK < pc.cols;  // the workgroup's: barriers stay uniform
        if (STAGES == 1u) {
            store_fetched(0u);
            barrier();
        }
        if (more) fetch(r0, tp, k0 + BK);
        // 16 columns at a time (2 uvec4), this group's share of the step's.
        for (uint kk = group * 2u; kk < CHUNKS && nj > 0u; kk += 2u * SPLITK) {
#ifdef COOPMAT
            // A: rows x k, row-major from WS. B: k x tokens, held column by column from XS.
            // Split: a_lo the weights' lo halves (loaded only for the types that have them).
            F16 a[MI], a_lo[MI];
            for (uint i = 0; i < MI; ++i) coopMatLoadNV(a[i], sm, sb + WS + (mr + 16u * i) * KP4 + kk, KP4, false);
            if (W_LO > 0u)
                for (uint i = 0; i < MI; ++i) coopMatLoadNV(a_lo[i], sm, sb + WS + W_LO + (mr + 16u * i) * KP4 + kk, KP4, false);
#ifdef SWIGLU
            F16 a_up[MI], a_up_lo[MI];
            for (uint i = 0; i < MI; ++i) coopMatLoadNV(a_up[i], sm, sb + US + (mr + 16u * i) * KP4 + kk, KP4, false);
            if (W_LO > 0u)
                for (uint i = 0; i < MI; ++i)
                    coopMatLoadNV(a_up_lo[i], sm, sb + US + W_LO + (mr + 16u * i) * KP4 + kk, KP4, false);
#endif
            for (uint j = 0; j < NJ; ++j) {
                if (j >= nj) continue;
                F16 b;
                coopMatLoadNV(b, sm, sb + XS + (mt + 16u * j) * KP4 + kk, KP4, true);
                for (uint i = 0; i < MI; ++i) acc[i * NJ + j] = coopMatMulAddNV(a[i], b, acc[i * NJ + j]);
                if (W_LO > 0u)
                    for (uint i = 0; i < MI; ++i) acc[i * NJ + j] = coopMatMulAddNV(a_lo[i], b, acc[i * NJ + j]);
#ifdef SWIGLU
                for (uint i = 0; i < MI; ++i) acc_up[i * NJ + j] = coopMatMulAddNV(a_up[i], b, acc_up[i * NJ + j]);
                if (W_LO > 0u)
                    for (uint i = 0; i < MI; ++i)
                        acc_up[i * NJ + j] = coopMatMulAddNV(a_up_lo[i], b, acc_up[i * NJ + j]);
#endif
                if (X_LO > 0u) {
                    coopMatLoadNV(b, sm, sb + XS + X_LO + (mt + 16u * j) * KP4 + kk, KP4, true);  // the activations' lo halves
                    for (uint i = 0; i < MI; ++i) acc[i * NJ + j] = coopMatMulAddNV(a[i], b, acc[i * NJ + j]);
#ifdef SWIGLU
                    for (uint i = 0; i < MI; ++i)
                        acc_up[i * NJ + j] = coopMatMulAddNV(a_up[i], b, acc_up[i * NJ + j]);
#endif
                }
            }
#else
            for (uint j = 0; j < NJ; ++j)
                for (uint i = 0; i < MI && j < nj; ++i) {
                    acc[i * NJ + j] = product_add(acc[i * NJ + j], false, sb, mr + 16u * i, mt + 16u * j, kk);
#ifdef SWIGLU
                    acc_up[i * NJ + j] = product_add(acc_up[i * NJ + j], true, sb, mr + 16u * i, mt + 16u * j, kk);
#endif
                }
#endif
        }
        if (STAGES == 2u && more) {
            // The next step into the other copy: nobody reads it until after the barrier
            // below, and every thread left it at the previous step's barrier.
            sb = STAGED - sb;
            store_fetched(sb);
        }
        barrier();
    }
    reduce_split_k(acc, group, mr, mt, nj);
#ifdef SWIGLU
    reduce_split_k(acc_up, group, mr, mt, nj);
    // Both sums of a subgroup lay out their elements alike: silu(gate) * up element-wise.
    for (uint i = 0; i < N_SUMS; ++i) acc[i] = swiglu_sums(acc[i], acc_up[i]);
#endif
    if (group == 0u) store_sums(acc, mr, mt, nj);
    barrier();
    for (uint e = gl_LocalInvocationIndex; e < BM * TN; e += THREADS) {
        const uint lt = e / BM, lr = e % BM;
        if (r0 + lr < pc.rows && lt < pass_tokens) y[(t_base + tp + lt) * pc.rows + r0 + lr] = cs_get(lt * CP + lr);
    }
    barrier();  // cs read before the next pass stages its tiles over it
}

void main() {
    const uint r0 = gl_WorkGroupID.x * BM, t0 = select_tile();
    if (n_tok == 0u) return;  // a spare tile of a device-built table's worst-case grid (uniform: before any barrier)
    const uint group = gl_LocalInvocationID.y, part = gl_LocalInvocationID.x / 32u;
    // This subgroup's rows and tokens of a pass (the 4 subgroups of a group cover it).
    const uint mr = (part % SR) * 16u * MI, mt = (part / SR) * 16u * NJ;
    const uint tile_tokens = min(uint(BN), n_tok - t0);
    // The tile's tokens TN at a time (one pass when TN = BN): tile_tokens is the
    // workgroup's, so every thread takes the same passes and passes the same barriers.
    for (uint tp = t0; tp < t0 + tile_tokens; tp += TN)
        run_pass(r0, tp, min(TN, t0 + tile_tokens - tp), group, mr, mt);
}
