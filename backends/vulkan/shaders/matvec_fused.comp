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
// Bindings: 0 W, 1 x, 2 y, 3 the norm weight (f32) or r_in, 4 h or r_out; topk: 5 ids,
// 6 weights, 7 the counter.
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
#ifdef NORM
layout(std430, binding = 3) readonly buffer NormWeight { vec4 nw4[]; };
layout(std430, binding = 4) writeonly buffer H { vec4 h4[]; };
#ifdef TOPK
layout(push_constant) uniform Push { uint rows, cols; float eps, offset; uint write_h, k, renormalize; } pc;
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
#define X4(i) (x4[i] * inv_rms * (pc.offset + nw4[i]))

// 1 / rms(x) as norm_vec4.comp computes it: its invocation t's partial sum, the same
// subgroup sums (invocation t at the same subgroup lane) and the same sum of them in order
// (or the same shared-memory tree), this workgroup playing its 256 invocations in rounds.
float norm_inverse() {
    const uint nt = LANES * ROWS, d4 = pc.cols / 4u;
    for (uint k = 0u; k < NORM_THREADS / nt; ++k) {
#ifdef USE_SUBGROUP
        const uint t = k * nt + gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID;
#else
        const uint t = k * nt + gl_LocalInvocationIndex;
#endif
        vec4 v[NORM_PER];
        float s = 0.0;
        for (uint i = 0u; i < NORM_PER; ++i) {
            const uint c = t + i * NORM_THREADS;
            v[i] = c < d4 ? x4[c] : vec4(0.0);
        }
        for (uint i = 0u; i < NORM_PER; ++i) s += dot(v[i], v[i]);
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
    return inversesqrt(sum / float(pc.cols) + pc.eps);
}
#else
#define X4(i) x4[i]
#endif

#include "matvec_unit.glsl"
#include "matvec_row_total.glsl"
#ifdef TOPK
#define TOPK_LOGITS y
#include "softmax_topk_rank.glsl"
shared bool topk_last;
#endif

void main() {
    const uint lane = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y;
    const uint r = gl_WorkGroupID.x * ROWS + ly;
#ifdef NORM
    inv_rms = norm_inverse();
#endif
    float acc = 0.0;
    if (r < pc.rows) {
        const uint n_units = pc.cols / UNIT;
        uint u = lane;
        for (; u + 3u * LANES < n_units; u += 4u * LANES) {
            const float s0 = unit_dot(r, u), s1 = unit_dot(r, u + LANES);
            const float s2 = unit_dot(r, u + 2u * LANES), s3 = unit_dot(r, u + 3u * LANES);
            acc += (s0 + s1) + (s2 + s3);
        }
        for (; u < n_units; u += LANES) acc += unit_dot(r, u);
    }
    acc = row_total(acc, ly, lane);
    if (lane == 0u && r < pc.rows) {
        y[r] = acc;
#ifndef NORM
        r_out[r] = r_in[r] + acc;
#endif
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
