#version 450
// Prefill attention with the products on cooperative matrices (docs/gpu_prefill.md, "Flash
// attention"): same bindings as attention.comp (the scratch binding unused) and its push
// constants plus `tq`. A workgroup takes tq queries of ALL the heads of one GQA group (64
// query rows: row r is query t0 + r / group of head kv * group + r % group, tq = 64 / group),
// so each block of 32 keys staged in shared memory serves 64 rows instead of the blocked
// kernel's 16 rows of one head. Its 4 subgroups of 32 threads own 16 rows each and walk the
// keys with an online softmax:
//   S (16 x 32) = Q K^T  as 16 x 16 x 16 f16 products, Q held in registers the whole call;
//   the row's maximum, the probabilities P (f16, to shared memory) and the rescale factor
//   alpha = exp(m_old - m_new), one thread a row;
//   O (16 x v_dim) = alpha * O + P V, O in f32 accumulators; alpha (and the final 1 / sum)
//   reach them as a 16 x 16 tile whose row r holds the row's factor, multiplied element by
//   element (two matrices of one type lay out their elements alike).
// head_dim and v_dim multiples of 16 up to 128 (op_attention_flash.cpp falls back to the
// blocked kernel for others); windows, sinks and GQA groups up to 64 as attention.comp.
//
// PRECISION (constant 0, MST_VULKAN_COOPMAT_PRECISION as for the GEMMs, gemm_precision.h):
// split and exact stage Q and K as hi = f16_head(x) and lo = f16(x - hi), and S takes
// Qhi Khi + Qlo Khi + Qhi Klo (about 22 bits of each, as gemm_tuned.comp splits f32
// weights and activations); f16 takes one f16 of each. P (in [0, 1]) and V are one f16
// each under all three: their rounding averages out over the keys, while a score's error
// is multiplied by exp.
// PAD (constant 1): 1 pads every staged row by 16 bytes so that the 8 rows a 16 x 16 load
// reads start in different banks; 0 where the device's shared memory is too small for the
// padding (lavapipe's 32 KiB under split).
//
// COOPMAT: the products are VK_NV_cooperative_matrix's (f16 x f16 + f32). Without it the
// same tiling, staging and shared-memory layout run with the products in float (each f16
// product exact in float, as a tensor core's): thread l of a subgroup holds elements
// 32q + l of a 16 x 16 sum (row l % 16, column 2q + l / 16), and of an A operand its row
// l % 16; B operands are read from shared memory. Slow, but it is what CI can run
// (lavapipe has no cooperative matrices).
//! variant attention_flash
//! variant attention_flash_coop -DCOOPMAT
#extension GL_GOOGLE_include_directive : require
#ifdef COOPMAT
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#include "common.glsl"

layout(local_size_x = 128) in;
layout(constant_id = 0) const uint PRECISION = 1u;  // 0 f16, 1 split, 2 exact
layout(constant_id = 1) const uint PAD = 1u;
const bool SPLIT = PRECISION != 0u;

#define ROWS 64  // query rows a workgroup (4 subgroups x 16)
#define BKV 32   // keys a block
#define DMAX 128

// Shared memory, one array of uvec4 (8 f16 or 4 f32 each), offsets and pitches in uvec4:
// the block's K rows (hi, and lo under the split) and V rows, [key][dim / 8]; then a region
// per subgroup that holds its S tile (16 x 32 f32), and once S is read, its P tile
// (16 x 32 f16) followed by the 16 x 16 f32 factor tile. Q is staged once, at the start,
// where K and V go.
const uint KP = DMAX / 8u + PAD;     // K, V and Q rows
const uint SP = BKV / 4u + PAD;      // S rows
const uint PP = BKV / 8u + PAD;      // P rows
const uint K_LO = BKV * KP;
const uint V_AT = K_LO + (SPLIT ? BKV * KP : 0u);
const uint TILE = V_AT + BKV * KP;   // where the subgroups' regions start
const uint SUB = 16u * SP;           // a subgroup's region
const uint FACTORS = 16u * PP;       // the factor tile, after P (16 * PP + 64 <= SUB)
shared uvec4 sh[TILE + 4u * SUB];

layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };
layout(std430, binding = 3) writeonly buffer O { float o[]; };
layout(std430, binding = 5) readonly buffer Sinks { float sinks[]; };

layout(push_constant) uniform Push {
    uint n_tokens, n_heads, group, head_dim, v_dim, pos0;
    uint k_head, v_head;
    uint k_row, v_row;
    float scale;
    uint window, has_sinks, n_ctx;
    uint tq;  // queries a workgroup: ROWS / group
} pc;

const float NEG_INF = -1.0 / 0.0;

// First key position query position `pos` sees.
uint first_key(uint pos) { return pc.window > 0u && pos + 1u > pc.window ? pos + 1u - pc.window : 0u; }

// 8 floats as f16: their hi halves (leading 11 bits) when `head`, else each rounded once.
uvec4 pack8(const float x[8], bool head) {
    uvec4 p;
    for (uint i = 0; i < 4u; ++i) {
        const vec2 pair = vec2(x[2u * i], x[2u * i + 1u]);
        p[i] = packHalf2x16(head ? vec2(f16_head(pair.x), f16_head(pair.y)) : pair);
    }
    return p;
}

// What their hi halves leave, as f16 (the lo half of the split).
uvec4 pack8_rest(const float x[8]) {
    uvec4 p;
    for (uint i = 0; i < 4u; ++i)
        p[i] = packHalf2x16(vec2(x[2u * i] - f16_head(x[2u * i]), x[2u * i + 1u] - f16_head(x[2u * i + 1u])));
    return p;
}

float shared_float(uint index) { return uintBitsToFloat(sh[index / 4u][index % 4u]); }

#ifdef COOPMAT
#define SUM fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define AOP fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>

SUM sum_zero() { return SUM(0.0); }
void sum_store(const SUM s, uint at, uint pitch) { coopMatStoreNV(s, sh, at, pitch, false); }
SUM sum_load(uint at, uint pitch) {
    SUM s;
    coopMatLoadNV(s, sh, at, pitch, false);
    return s;
}
SUM sum_scale(SUM s, const SUM f) {
    for (int e = 0; e < s.length(); ++e) s[e] *= f[e];
    return s;
}
AOP a_load(uint at, uint pitch) {
    AOP a;
    coopMatLoadNV(a, sh, at, pitch, false);
    return a;
}
// c + a * B, B's 16 x 16 f16 at `at`: column by column (K^T from K's rows) or row by row (V).
// Two loads with constant layouts (SPIR-V takes only a constant there), picked by by_column,
// which every call passes as a constant.
SUM mul_add(const AOP a, uint at, uint pitch, bool by_column, const SUM c) {
    AOP b;
    if (by_column) coopMatLoadNV(b, sh, at, pitch, true);
    else coopMatLoadNV(b, sh, at, pitch, false);
    return coopMatMulAddNV(a, b, c);
}
#else
struct Sum16 {
    float e[8];
};
#define SUM Sum16
struct ARow {
    float e[16];  // the thread's row (lane % 16) of a 16 x 16 A operand
};
#define AOP ARow

uint lane() { return gl_LocalInvocationID.x % 32u; }
float shared_half(uint index) {
    const vec2 pair = unpackHalf2x16(sh[index / 8u][(index % 8u) / 2u]);
    return (index & 1u) != 0u ? pair.y : pair.x;
}

SUM sum_zero() {
    SUM s;
    for (uint i = 0; i < 8u; ++i) s.e[i] = 0.0;
    return s;
}
void sum_store(const SUM s, uint at, uint pitch) {
    for (uint i = 0; i < 8u; ++i) {
        const uint f = (at + (lane() % 16u) * pitch) * 4u + 2u * i + lane() / 16u;
        sh[f / 4u][f % 4u] = floatBitsToUint(s.e[i]);
    }
}
SUM sum_load(uint at, uint pitch) {
    SUM s;
    for (uint i = 0; i < 8u; ++i) s.e[i] = shared_float((at + (lane() % 16u) * pitch) * 4u + 2u * i + lane() / 16u);
    return s;
}
SUM sum_scale(SUM s, const SUM f) {
    for (uint i = 0; i < 8u; ++i) s.e[i] *= f.e[i];
    return s;
}
AOP a_load(uint at, uint pitch) {
    AOP a;
    for (uint c = 0; c < 16u; ++c) a.e[c] = shared_half((at + (lane() % 16u) * pitch) * 8u + c);
    return a;
}
SUM mul_add(const AOP a, uint at, uint pitch, bool by_column, SUM c) {
    for (uint i = 0; i < 8u; ++i) {
        const uint n = 2u * i + lane() / 16u;
        float t = c.e[i];
        for (uint kk = 0; kk < 16u; ++kk)
            t += a.e[kk] * shared_half(by_column ? (at + n * pitch) * 8u + kk : (at + kk * pitch) * 8u + n);
        c.e[i] = t;
    }
    return c;
}
#endif

// Query rows of the workgroup as f16 (their hi halves, or under `lo` their lo halves) to
// sh[r * KP ...]; rows past the queries zero.
void stage_q(uint kv, uint t0, uint live_rows, bool lo) {
    for (uint slot = gl_LocalInvocationID.x; slot < ROWS * (DMAX / 8u); slot += 128u) {
        const uint r = slot / (DMAX / 8u), c = slot % (DMAX / 8u);
        float x[8] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        if (r < live_rows && 8u * c < pc.head_dim) {
            const uint base = ((t0 + r / pc.group) * pc.n_heads + kv * pc.group + r % pc.group) * pc.head_dim + 8u * c;
            for (uint i = 0; i < 8u; ++i) x[i] = q[base + i];
        }
        sh[r * KP + c] = lo ? pack8_rest(x) : pack8(x, SPLIT);
    }
}

// The block's keys [k0, k0 + BKV) below `end` as f16 rows (K split under SPLIT); zero past it.
void stage_kv(uint kv, uint k0, uint end) {
    for (uint slot = gl_LocalInvocationID.x; slot < BKV * (DMAX / 8u); slot += 128u) {
        const uint j = slot / (DMAX / 8u), c = slot % (DMAX / 8u), pos = k0 + j;
        float kx[8] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), vx[8] = kx;
        if (pos < end && 8u * c < pc.head_dim)
            for (uint i = 0; i < 8u; ++i) kx[i] = k[kv * pc.k_head + pos * pc.k_row + 8u * c + i];
        if (pos < end && 8u * c < pc.v_dim)
            for (uint i = 0; i < 8u; ++i) vx[i] = v[kv * pc.v_head + pos * pc.v_row + 8u * c + i];
        sh[j * KP + c] = pack8(kx, SPLIT);
        if (SPLIT) sh[K_LO + j * KP + c] = pack8_rest(kx);
        sh[V_AT + j * KP + c] = pack8(vx, false);
    }
}

void main() {
    const uint kv = gl_WorkGroupID.x, t0 = gl_WorkGroupID.y * pc.tq;
    const uint sg = gl_LocalInvocationID.x / 32u, ln = gl_LocalInvocationID.x % 32u;
    const uint nq = min(pc.tq, pc.n_tokens - t0), live_rows = nq * pc.group;
    const uint k_steps = pc.head_dim / 16u, v_steps = pc.v_dim / 16u;
    const uint region = TILE + sg * SUB;

    // Q to registers: this subgroup's 16 rows, 16 dimensions an operand (loops to the
    // constant DMAX / 16 so that the operands stay in registers).
    AOP qh[DMAX / 16], ql[DMAX / 16];
    stage_q(kv, t0, live_rows, false);
    barrier();
    for (uint kk = 0; kk < DMAX / 16u; ++kk)
        if (kk < k_steps) qh[kk] = a_load(sg * 16u * KP + 2u * kk, KP);
    if (SPLIT) {
        barrier();
        stage_q(kv, t0, live_rows, true);
        barrier();
        for (uint kk = 0; kk < DMAX / 16u; ++kk)
            if (kk < k_steps) ql[kk] = a_load(sg * 16u * KP + 2u * kk, KP);
    }

    // The softmax state of this thread's row (lane % 16; both threads of a row keep it).
    const uint row = sg * 16u + ln % 16u;
    const bool live = row < live_rows;
    const uint head = kv * pc.group + row % pc.group, qpos = pc.pos0 + t0 + row / pc.group;
    const uint qfirst = first_key(qpos);
    // A sink is a key with no value: start the softmax from it.
    float m = NEG_INF, l = 0.0;
    if (live && pc.has_sinks != 0u) {
        m = sinks[head];
        l = 1.0;
    }
    SUM acc[DMAX / 16];
    for (uint j = 0; j < DMAX / 16u; ++j) acc[j] = sum_zero();

    const uint lo = first_key(pc.pos0 + t0), hi = pc.pos0 + t0 + nq;  // keys [lo, hi) of the block
    for (uint k0 = lo; k0 < hi; k0 += BKV) {
        barrier();  // the previous block's K, V and P (and Q's staging) are no longer read
        stage_kv(kv, k0, hi);
        barrier();
        for (uint n = 0; n < BKV / 16u; ++n) {
            SUM s = sum_zero();
            for (uint kk = 0; kk < DMAX / 16u; ++kk) {
                if (kk >= k_steps) continue;
                const uint at = 16u * n * KP + 2u * kk;
                s = mul_add(qh[kk], at, KP, true, s);
                if (SPLIT) {
                    s = mul_add(ql[kk], at, KP, true, s);
                    s = mul_add(qh[kk], K_LO + at, KP, true, s);
                }
            }
            sum_store(s, region + 4u * n, SP);
        }
        barrier();
        // The row's scores, masked: keys past the causal end, before the window, past the block.
        float p[BKV];
        float m_new = m;
        for (uint j = 0; j < BKV; ++j) {
            const uint pos = k0 + j;
            const bool seen = live && pos < hi && pos <= qpos && pos >= qfirst;
            p[j] = seen ? shared_float((region + (ln % 16u) * SP) * 4u + j) * pc.scale : NEG_INF;
            m_new = max(m_new, p[j]);
        }
        // A row with no key seen yet keeps m = -inf; its probabilities are 0, not NaN.
        const bool any = m_new > NEG_INF;
        const float alpha = any ? exp(m - m_new) : 1.0;
        float sum = 0.0;
        for (uint j = 0; j < BKV; ++j) {
            p[j] = any ? exp(p[j] - m_new) : 0.0;
            sum += p[j];
        }
        l = l * alpha + sum;
        m = m_new;
        barrier();  // every row's scores are read before P and the factors replace them
        if (ln < 16u) {
            for (uint c = 0; c < BKV / 8u; ++c) {
                float x[8];
                for (uint i = 0; i < 8u; ++i) x[i] = p[8u * c + i];
                sh[region + (ln % 16u) * PP + c] = pack8(x, false);
            }
            for (uint c = 0; c < 4u; ++c) sh[region + FACTORS + ln * 4u + c] = uvec4(floatBitsToUint(alpha));
        }
        barrier();
        const SUM f = sum_load(region + FACTORS, 4u);
        for (uint j = 0; j < DMAX / 16u; ++j)
            if (j < v_steps) acc[j] = sum_scale(acc[j], f);
        for (uint kb = 0; kb < BKV / 16u; ++kb) {
            const AOP pa = a_load(region + 2u * kb, PP);
            for (uint j = 0; j < DMAX / 16u; ++j)
                if (j < v_steps) acc[j] = mul_add(pa, V_AT + 16u * kb * KP + 2u * j, KP, false, acc[j]);
        }
    }
    // 1 / sum to the factor tile (0 for rows past the queries: l = 0 there), then each
    // 16 x 16 piece of the output through the region to the output rows.
    barrier();
    if (ln < 16u) {
        const float inv = l > 0.0 ? 1.0 / l : 0.0;
        for (uint c = 0; c < 4u; ++c) sh[region + FACTORS + ln * 4u + c] = uvec4(floatBitsToUint(inv));
    }
    barrier();
    const SUM f = sum_load(region + FACTORS, 4u);
    barrier();  // the factors are read before the pieces overwrite them
    const uint obase = ((t0 + row / pc.group) * pc.n_heads + head) * pc.v_dim;
    for (uint j = 0; j < DMAX / 16u; ++j) {
        if (j >= v_steps) continue;
        sum_store(sum_scale(acc[j], f), region, SP);
        barrier();
        if (live)
            for (uint c = 0; c < 8u; ++c) {
                const uint col = 8u * (ln / 16u) + c;
                o[obase + 16u * j + col] = shared_float((region + (ln % 16u) * SP) * 4u + col);
            }
        barrier();
    }
}
