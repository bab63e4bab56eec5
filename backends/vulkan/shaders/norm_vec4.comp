#version 450
// norm.comp's row normalisations (same modes, bindings and push constants) for rows of
// whole vec4s up to 4096 wide (op_norm_rope.cpp picks it): a decode step's norms of one
// 2048-wide row and of its 128-wide q/k heads. Why: norm.comp walks a row twice, a float
// per invocation per step, so a 2048-wide row costs 2 x 8 dependent loads; here each
// invocation loads its at most 4 vec4s once, all in flight together, keeps them for the
// second pass, and the sum of squares meets with subgroupAdd (the _sg variant) or a
// shared-memory tree.
//! variant norm_vec4
//! variant norm_vec4_sg -DUSE_SUBGROUP
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common.glsl"

#define THREADS 256
#define PER 4  // vec4s per invocation: rows up to 4 * 4 * THREADS = 4096
layout(local_size_x = THREADS) in;

layout(std430, binding = 0) readonly buffer X { vec4 x[]; };
layout(std430, binding = 1) readonly buffer W { vec4 w[]; };
layout(std430, binding = 2) readonly buffer Gate { vec4 gate[]; };
layout(std430, binding = 3) writeonly buffer Y { vec4 y[]; };

layout(push_constant) uniform Push { uint dim, mode; float eps, offset; } pc;

shared float partial[THREADS];

float row_sum(float s) {
    const uint tid = gl_LocalInvocationID.x;
#ifdef USE_SUBGROUP
    s = subgroupAdd(s);
    if (subgroupElect()) partial[gl_SubgroupID] = s;
    barrier();
    float r = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; ++i) r += partial[i];
    return r;
#else
    partial[tid] = s;
    barrier();
    for (uint k = THREADS / 2u; k > 0u; k >>= 1) {
        if (tid < k) partial[tid] += partial[tid + k];
        barrier();
    }
    return partial[0];
#endif
}

vec4 silu4(vec4 v) { return vec4(silu(v.x), silu(v.y), silu(v.z), silu(v.w)); }

void main() {
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * 65535u;
    const uint tid = gl_LocalInvocationID.x;
    const uint d4 = pc.dim / 4u, base = row * d4;
    vec4 v[PER];
    float s = 0.0;
    for (uint i = 0u; i < PER; ++i) {
        const uint c = tid + i * THREADS;
        v[i] = c < d4 ? x[base + c] : vec4(0.0);
    }
    for (uint i = 0u; i < PER; ++i) s += dot(v[i], v[i]);
    const float sum = row_sum(s);
    const float inv = pc.mode == 2u ? inversesqrt(sum + pc.eps) : inversesqrt(sum / float(pc.dim) + pc.eps);
    for (uint i = 0u; i < PER; ++i) {
        const uint c = tid + i * THREADS;
        if (c >= d4) break;
        if (pc.mode == 0u) y[base + c] = v[i] * inv * (pc.offset + w[c]);
        else if (pc.mode == 1u) y[base + c] = w[c] * (v[i] * inv) * silu4(gate[base + c]);
        else y[base + c] = v[i] * inv;
    }
}
