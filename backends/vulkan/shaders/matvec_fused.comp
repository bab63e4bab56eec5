#version 450
// matvec.comp's one-token product y = W x with the op before or after it folded in, so
// that a decode layer waits for one dependent dispatch less each time (op_fusion.cpp,
// MST_VULKAN_ATTENTION_FUSION):
//   matvec_norm_*: y = W rms_norm(x): every workgroup takes the sum of squares of x
//     itself (a few KB from cache, cheaper than a dispatch and the barrier after it) and
//     applies the norm weight as it loads x. The sum is taken exactly as norm_vec4.comp
//     takes it (256 invocations of 4 vec4s each, the same subgroup sums or shared-memory
//     tree, replayed here in rounds of this workgroup's size), so the normalised x, and
//     with it y, are the unfused commands' bit for bit. With pc.write_h, workgroup 0 also
//     writes the normalised x to h (the experts read it a level later).
//   matvec_add_*: y = W x and r_out = r_in + y (the residual add of elementwise.comp, the
//     same float addition, so bit for bit too).
//   matvec_norm_topk_*: matvec_norm_* for the router, then softmax_topk_rank.comp's top k
//     over y in the same dispatch (op_routing.cpp, MST_VULKAN_ROUTER_TOPK_FUSION): each
//     workgroup counts itself done on an atomic counter after its rows are written, and
//     the last one ranks the experts (softmax_topk_rank.glsl, the same bits) and sets the
//     counter back to 0 for the next dispatch. One dependent dispatch less per layer.
//   matvec_norm_qkv_*: matvec_norm_* of three products of the same x, type and width (q, k
//     and v; op_fusion.cpp, MST_VULKAN_QKV_FUSION) as one grid: q's workgroups, then k's,
//     then v's. Each product's rows start a workgroup of their own, so that every row is
//     summed by the lanes, the workgroup row and the place among its lane's PER_LANE rows
//     its own dispatch would give it (the same bits); the workgroup picks its product by
//     its id (uniform over it), and workgroup 0, one of q's, writes h. k's and v's small
//     grids then run beside q's rather than each in a dispatch of its own that the device
//     cannot fill.
// Every variant takes the dense shape's PER_LANE rows a lane (matvec_rows.glsl) as
// matvec.comp does, so each row is summed as the unfused product sums it.
// Bindings: 0 W, 1 x, 2 y, 3 the norm weight (f32) or r_in, 4 h or r_out; topk: 5 ids,
// 6 weights, 7 the counter; qkv: 5 k's W, 6 v's W, 7 k's y, 8 v's y (0 and 2 q's).
//! variant matvec_norm_f32 -DW_F32 -DNORM
//! variant matvec_norm_f16 -DW_F16 -DNORM
//! variant matvec_norm_bf16 -DW_BF16 -DNORM
//! variant matvec_norm_q8 -DW_Q8 -DNORM
//! variant matvec_norm_q4 -DW_Q4 -DNORM
//! variant matvec_norm_f32_sg -DW_F32 -DNORM -DUSE_SUBGROUP
//! variant matvec_norm_f16_sg -DW_F16 -DNORM -DUSE_SUBGROUP
//! variant matvec_norm_bf16_sg -DW_BF16 -DNORM -DUSE_SUBGROUP
//! variant matvec_norm_q8_sg -DW_Q8 -DNORM -DUSE_SUBGROUP
//! variant matvec_norm_q4_sg -DW_Q4 -DNORM -DUSE_SUBGROUP
//! variant matvec_norm_topk_f32 -DW_F32 -DNORM -DTOPK
//! variant matvec_norm_topk_f16 -DW_F16 -DNORM -DTOPK
//! variant matvec_norm_topk_bf16 -DW_BF16 -DNORM -DTOPK
//! variant matvec_norm_topk_q8 -DW_Q8 -DNORM -DTOPK
//! variant matvec_norm_topk_q4 -DW_Q4 -DNORM -DTOPK
//! variant matvec_norm_topk_f32_sg -DW_F32 -DNORM -DTOPK -DUSE_SUBGROUP
//! variant matvec_norm_topk_f16_sg -DW_F16 -DNORM -DTOPK -DUSE_SUBGROUP
//! variant matvec_norm_topk_bf16_sg -DW_BF16 -DNORM -DTOPK -DUSE_SUBGROUP
//! variant matvec_norm_topk_q8_sg -DW_Q8 -DNORM -DTOPK -DUSE_SUBGROUP
//! variant matvec_norm_topk_q4_sg -DW_Q4 -DNORM -DTOPK -DUSE_SUBGROUP
//! variant matvec_norm_qkv_f32 -DW_F32 -DNORM -DQKV
//! variant matvec_norm_qkv_f16 -DW_F16 -DNORM -DQKV
//! variant matvec_norm_qkv_bf16 -DW_BF16 -DNORM -DQKV
//! variant matvec_norm_qkv_q8 -DW_Q8 -DNORM -DQKV
//! variant matvec_norm_qkv_q4 -DW_Q4 -DNORM -DQKV
//! variant matvec_norm_qkv_f32_sg -DW_F32 -DNORM -DQKV -DUSE_SUBGROUP
//! variant matvec_norm_qkv_f16_sg -DW_F16 -DNORM -DQKV -DUSE_SUBGROUP
//! variant matvec_norm_qkv_bf16_sg -DW_BF16 -DNORM -DQKV -DUSE_SUBGROUP
//! variant matvec_norm_qkv_q8_sg -DW_Q8 -DNORM -DQKV -DUSE_SUBGROUP
//! variant matvec_norm_qkv_q4_sg -DW_Q4 -DNORM -DQKV -DUSE_SUBGROUP
//! variant matvec_add_f32 -DW_F32
//! variant matvec_add_f16 -DW_F16
//! variant matvec_add_bf16 -DW_BF16
//! variant matvec_add_q8 -DW_Q8
//! variant matvec_add_q4 -DW_Q4
//! variant matvec_add_f32_sg -DW_F32 -DUSE_SUBGROUP
//! variant matvec_add_f16_sg -DW_F16 -DUSE_SUBGROUP
//! variant matvec_add_bf16_sg -DW_BF16 -DUSE_SUBGROUP
//! variant matvec_add_q8_sg -DW_Q8 -DUSE_SUBGROUP
//! variant matvec_add_q4_sg -DW_Q4 -DUSE_SUBGROUP
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common.glsl"

layout(constant_id = 0) const uint LANES = 32;
layout(constant_id = 1) const uint ROWS = 4;
layout(local_size_x_id = 0, local_size_y_id = 1) in;

layout(std430, binding = 0) readonly buffer Weights { uint w[]; };
layout(std430, binding = 0) readonly buffer Weights4 { uvec4 w4[]; };
layout(std430, binding = 1) readonly buffer X4 { vec4 x4[]; };
#ifdef TOPK
// Coherent: the last workgroup reads the rows the others wrote.
layout(std430, binding = 2) coherent buffer Y { float y[]; };
layout(std430, binding = 5) buffer TopkIds { int ids[]; };
layout(std430, binding = 6) buffer TopkWeights { float weights[]; };
layout(std430, binding = 7) coherent buffer Counter { uint counter[]; };
#else
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
#endif
#ifdef QKV
layout(std430, binding = 5) readonly buffer WeightsK { uint wk[]; };
layout(std430, binding = 5) readonly buffer WeightsK4 { uvec4 wk4[]; };
layout(std430, binding = 6) readonly buffer WeightsV { uint wv[]; };
layout(std430, binding = 6) readonly buffer WeightsV4 { uvec4 wv4[]; };
layout(std430, binding = 7) writeonly buffer YK { float yk[]; };
layout(std430, binding = 8) writeonly buffer YV { float yv[]; };
#endif
#ifdef NORM
layout(std430, binding = 3) readonly buffer NormWeight { vec4 nw4[]; };
layout(std430, binding = 4) writeonly buffer H { vec4 h4[]; };
#ifdef TOPK
layout(push_constant) uniform Push { uint rows, cols; float eps, offset; uint write_h, k, renormalize; } pc;
#elif defined(QKV)
// rows: q's; k_rows, v_rows: k's and v's (all of cols columns).
layout(push_constant) uniform Push { uint rows, cols; float eps, offset; uint write_h, k_rows, v_rows; } pc;
#else
layout(push_constant) uniform Push { uint rows, cols; float eps, offset; uint write_h; } pc;
#endif
#else
layout(std430, binding = 3) readonly buffer ResidualIn { float r_in[]; };
layout(std430, binding = 4) writeonly buffer ResidualOut { float r_out[]; };
layout(push_constant) uniform Push { uint rows, cols; } pc;
#endif

// row_total's partials (matvec_row_total.glsl), in the _sg variants for rows of several subgroups.
shared float partial[ROWS][LANES];

#ifdef NORM
// norm_vec4.comp's shape: 256 invocations, each summing the squares of its 4 vec4s.
#define NORM_THREADS 256u
#define NORM_PER 4u
shared float norm_partial[NORM_THREADS];
float inv_rms;
// Element i of the normalised x (as vec4s), as norm_vec4.comp writes it.
#define NORM_X4(i) (x4[i] * inv_rms * (pc.offset + nw4[i]))
// STAGE_X (MST_VULKAN_NORM_X_SHARED): the workgroup normalises x once into x_staged (up to
// 4096 columns: op_fusion.cpp's norm_product_fits) and every lane reads it from there, rather
// than each lane loading x and the norm weight and multiplying for every unit of every row.
// The stored values are NORM_X4's, so the products' bits do not change.
layout(constant_id = 5) const uint STAGE_X = 0;
#ifdef TOPK
// AHEAD (MST_VULKAN_ROUTER_AHEAD, the router's variants alone): x staged as STAGE_X stages
// it, and a lane's first weights (float types, up to 8 16-byte loads) loaded before the
// norm's sum, so that they, x and the norm weight come in one memory round trip.
layout(constant_id = 6) const uint AHEAD = 1;
#else
const uint AHEAD = 0u;
#endif
const uint STAGED = STAGE_X | AHEAD;
shared vec4 x_staged[STAGED * 1023u + 1u];
#define X4(i) (STAGED != 0u ? x_staged[i] : NORM_X4(i))

// 1 / rms(x) as norm_vec4.comp computes it: its invocation t's partial sum, the same
// subgroup sums (invocation t at the same subgroup lane) and the same sum of them in order
// (or the same shared-memory tree), this workgroup playing its 256 invocations in rounds.
// Every round's loads are issued first. Staged (STAGED), the norm weight is loaded with x,
// the workgroup's registers then hold all of x (at most 4096 columns, 256 x 4 vec4s), and
// the normalised x goes to x_staged from them, NORM_X4's expression, then a barrier.
const uint NORM_ROUNDS = NORM_THREADS / (LANES * ROWS);
float norm_inverse() {
    const uint nt = LANES * ROWS, d4 = pc.cols / 4u;
    vec4 v[NORM_ROUNDS][NORM_PER], g[NORM_ROUNDS][NORM_PER];
    uint ts[NORM_ROUNDS];
    for (uint k = 0u; k < NORM_ROUNDS; ++k) {
#ifdef USE_SUBGROUP
        ts[k] = k * nt + gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID;
#else
        ts[k] = k * nt + gl_LocalInvocationIndex;
#endif
        for (uint i = 0u; i < NORM_PER; ++i) {
            const uint c = ts[k] + i * NORM_THREADS;
            v[k][i] = c < d4 ? x4[c] : vec4(0.0);
            if (STAGED != 0u) g[k][i] = c < d4 ? nw4[c] : vec4(0.0);
        }
    }
    for (uint k = 0u; k < NORM_ROUNDS; ++k) {
        const uint t = ts[k];
        float s = 0.0;
        for (uint i = 0u; i < NORM_PER; ++i) s += dot(v[k][i], v[k][i]);
#ifdef USE_SUBGROUP
        s = subgroupAdd(s);
        if (subgroupElect()) norm_partial[t / gl_SubgroupSize] = s;
#else
        norm_partial[t] = s;
#endif
    }
    barrier();
#ifdef USE_SUBGROUP
    float sum = 0.0;
    for (uint i = 0u; i < NORM_THREADS / gl_SubgroupSize; ++i) sum += norm_partial[i];
#else
    for (uint k = NORM_THREADS / 2u; k > 0u; k >>= 1) {
        for (uint t = gl_LocalInvocationIndex; t < k; t += nt) norm_partial[t] += norm_partial[t + k];
        barrier();
    }
    const float sum = norm_partial[0];
#endif
    const float inv = inversesqrt(sum / float(pc.cols) + pc.eps);
    if (STAGED != 0u) {  // uniform: specialisation constants
        for (uint k = 0u; k < NORM_ROUNDS; ++k)
            for (uint i = 0u; i < NORM_PER; ++i) {
                const uint c = ts[k] + i * NORM_THREADS;
                if (c < d4) x_staged[c] = v[k][i] * inv * (pc.offset + g[k][i]);
            }
        barrier();
    }
    return inv;
}
#else
#define X4(i) x4[i]
#endif

#include "matvec_unit.glsl"
#include "matvec_rows.glsl"
#ifdef QKV
// The unit products and lane sums again for k's and v's weights (matvec_unit.glsl reads
// W_WORDS and W_VEC4), each its own copy, so that a workgroup's loads name one buffer.
#undef W_WORDS
#undef W_VEC4
#define W_WORDS wk
#define W_VEC4 wk4
#define unit_dot unit_dot_k
#define unit_dot_x unit_dot_k_x
#define lane_partials lane_partials_k
#include "matvec_unit.glsl"
#include "matvec_rows.glsl"
#undef W_WORDS
#undef W_VEC4
#undef unit_dot
#undef unit_dot_x
#undef lane_partials
#define W_WORDS wv
#define W_VEC4 wv4
#define unit_dot unit_dot_v
#define unit_dot_x unit_dot_v_x
#define lane_partials lane_partials_v
#include "matvec_unit.glsl"
#include "matvec_rows.glsl"
#undef unit_dot
#undef unit_dot_x
#undef lane_partials
#endif
#include "matvec_row_total.glsl"
#if defined(TOPK) && (defined(W_F32) || defined(W_F16) || defined(W_BF16))
// AHEAD's weights loaded before the norm: a float type's units are one 16-byte load each
// (matvec_unit.glsl's unit_dot_q), 8 of them a lane at most (32 registers): two steps of
// four units at one row a lane, one at two, none above (each step is four units a row).
#define TOPK_PRELOAD
const uint PRE_STEPS = 2u / PER_LANE;
uvec4 pre_w[8];
#endif
#ifdef TOPK
#define TOPK_LOGITS y
#include "softmax_topk_rank.glsl"
shared bool topk_last;
#endif

void main() {
    const uint lane = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y;
    // A workgroup's rows: ROWS x PER_LANE, PER_LANE consecutive ones a lane (matvec_rows.glsl).
    const uint per_group = ROWS * PER_LANE;
#ifdef QKV
    // q's workgroups, k's, then v's: this workgroup's product and its rows in it.
    const uint q_groups = (pc.rows + per_group - 1u) / per_group, k_groups = (pc.k_rows + per_group - 1u) / per_group;
    const uint g = gl_WorkGroupID.x;
    const uint which = g < q_groups ? 0u : g < q_groups + k_groups ? 1u : 2u;
    const uint r0 = ((g - (which == 0u ? 0u : which == 1u ? q_groups : q_groups + k_groups)) * ROWS + ly) * PER_LANE;
    const uint rows = which == 0u ? pc.rows : which == 1u ? pc.k_rows : pc.v_rows;
#else
    const uint r0 = (gl_WorkGroupID.x * ROWS + ly) * PER_LANE, rows = pc.rows;
#endif
#ifdef TOPK_PRELOAD
    // The lane's weights of its first PRE_STEPS steps, loaded before the norm (they do not
    // depend on x): steps that lane_partials would take, four units a row at u, u + LANES, ...
    const uint n_units = pc.cols / UNIT;
    if (AHEAD != 0u && r0 < rows)
        for (uint s = 0u; s < PRE_STEPS; ++s) {
            const uint u = lane + s * 4u * LANES;
            if (u + 3u * LANES < n_units)
                for (uint p = 0u; p < PER_LANE; ++p) {
                    const uint wr = (PER_LANE == 1u ? r0 : min(r0 + p, rows - 1u)) * n_units;
                    for (uint j = 0u; j < 4u; ++j) pre_w[(s * PER_LANE + p) * 4u + j] = w4[wr + u + j * LANES];
                }
        }
#endif
#ifdef NORM
    inv_rms = norm_inverse();
#endif
    for (uint p = 0u; p < PER_LANE; ++p) row_acc[p] = 0.0;
#ifdef QKV
    if (r0 < rows) {
        if (which == 0u)
            lane_partials(r0, rows - 1u, lane);
        else if (which == 1u)
            lane_partials_k(r0, rows - 1u, lane);
        else
            lane_partials_v(r0, rows - 1u, lane);
    }
#elif defined(TOPK_PRELOAD)
    if (r0 < rows) {
        // The preloaded steps, summed as lane_partials sums its steps, then the rest by it.
        uint u = lane;
        if (AHEAD != 0u)
            for (uint s = 0u; s < PRE_STEPS && u + 3u * LANES < n_units; ++s, u += 4u * LANES) {
                const UnitX x0 = unit_x(u), x1 = unit_x(u + LANES), x2 = unit_x(u + 2u * LANES), x3 = unit_x(u + 3u * LANES);
                for (uint p = 0u; p < PER_LANE; ++p) {
                    const uint b = (s * PER_LANE + p) * 4u;
                    const float s0 = unit_dot_q(pre_w[b], x0), s1 = unit_dot_q(pre_w[b + 1u], x1);
                    const float s2 = unit_dot_q(pre_w[b + 2u], x2), s3 = unit_dot_q(pre_w[b + 3u], x3);
                    row_acc[p] += (s0 + s1) + (s2 + s3);
                }
            }
        lane_partials(r0, rows - 1u, u);
    }
#else
    if (r0 < rows) lane_partials(r0, rows - 1u, lane);
#endif
    for (uint p = 0u; p < PER_LANE; ++p) {
        const float acc = row_total(row_acc[p], ly, lane);
        const uint r = r0 + p;
        if (lane == 0u && r < rows) {
#ifdef QKV
            if (which == 0u)
                y[r] = acc;
            else if (which == 1u)
                yk[r] = acc;
            else
                yv[r] = acc;
#else
            y[r] = acc;
#endif
#ifndef NORM
            r_out[r] = r_in[r] + acc;
#endif
        }
    }
#ifdef NORM
    if (pc.write_h != 0u && gl_WorkGroupID.x == 0u)
        for (uint c = gl_LocalInvocationIndex; c < pc.cols / 4u; c += LANES * ROWS) h4[c] = X4(c);
#endif
#ifdef TOPK
    // This workgroup's rows are out (made visible before the count); the last to count
    // itself done sees every row and ranks the experts, with the workgroup's 128
    // invocations (op_routing.cpp takes this variant only at LANES x ROWS = 128).
    memoryBarrierBuffer();
    barrier();
    if (gl_LocalInvocationIndex == 0u) topk_last = atomicAdd(counter[0], 1u) == gl_NumWorkGroups.x - 1u;
    barrier();
    if (!topk_last) return;  // uniform over the workgroup
    memoryBarrierBuffer();
    softmax_topk_rank(0u, gl_LocalInvocationIndex, pc.rows, pc.k, pc.renormalize != 0u);
    if (gl_LocalInvocationIndex == 0u) counter[0] = 0u;  // ready for the next dispatch
#endif
}
