#version 450
//! variant attention_split
//! variant attention_split_sg -DUSE_SUBGROUP
//! variant attention_split_fused -DFUSED
//! variant attention_split_fused_sg -DUSE_SUBGROUP -DFUSED
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
// Decode attention split over positions (flash-decoding), first pass: a workgroup takes
// one query head, one query and one block of BLOCK keys of the range that query sees, and
// writes that block's partial softmax: its maximum score m, its sum of exp(score - m) and
// the values weighted by exp(score - m), unnormalised. attention_split_combine.comp merges
// the blocks. At decode attention.comp has one workgroup per head walking every position;
// here a long context spreads over heads x blocks workgroups. Same push constants as
// attention.comp plus the block count; head_dim up to 1024 (MLA's latent rows) like it.
// The _fused variants also merge the blocks themselves (attention_split_combine.glsl's
// split_combine_when_last), in place of the combine's dispatch.
#define BLOCK 32  // keys per workgroup, one per invocation: kSplitBlock in op_attention_split.cpp
layout(local_size_x = BLOCK) in;

layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };
// [n_tokens][n_heads][n_blocks][2 + v_dim]: m, l, then the weighted values.
#ifdef FUSED
// Coherent: the last workgroup of a (head, query) reads the blocks the others wrote.
layout(std430, binding = 3) coherent buffer Partials { float partials[]; };
#else
layout(std430, binding = 3) writeonly buffer Partials { float partials[]; };
#endif

// The step's first position, from memory rather than the push constants (whose pos0 and
// n_ctx are 0), so that one recorded command serves every decode step (replay).
layout(std430, binding = 4) readonly buffer Step { uint step_pos0; };

layout(push_constant) uniform Push {
    uint n_tokens, n_heads, group, head_dim, v_dim, pos0;
    uint k_head, v_head; // elements between kv heads in k and in v
    uint k_row, v_row;   // elements between positions
    float scale;
    uint window, has_sinks, n_ctx;
    uint n_blocks;
} pc;

#ifdef FUSED
layout(std430, binding = 5) readonly buffer Sinks { float sinks[]; };
layout(std430, binding = 6) writeonly buffer O { float o[]; };
layout(std430, binding = 7) coherent buffer Counter { uint counter[]; };  // per (query, head)
#include "attention_split_combine.glsl"
#endif

#define DCHUNK 128
#define PITCH (DCHUNK + 1)  // rows padded so that invocations reading one column hit different banks

shared float qs[1024];
shared float kt[BLOCK * PITCH];
shared float ps[BLOCK];
shared float red[BLOCK];

// Reductions over the block: with subgroup operations (the _sg variant, where the device
// has them) each subgroup reduces in registers and the subgroups' results meet in shared
// memory, whatever the subgroup size; else a tree in shared memory.
#ifdef USE_SUBGROUP
float reduce_max(float x) {
    x = subgroupMax(x);
    if (subgroupElect()) red[gl_SubgroupID] = x;
    barrier();
    float r = red[0];
    for (uint i = 1u; i < gl_NumSubgroups; ++i) r = max(r, red[i]);
    barrier();
    return r;
}

float reduce_sum(float x) {
    x = subgroupAdd(x);
    if (subgroupElect()) red[gl_SubgroupID] = x;
    barrier();
    float r = red[0];
    for (uint i = 1u; i < gl_NumSubgroups; ++i) r += red[i];
    barrier();
    return r;
}
#else
float reduce_max(float x) {
    const uint tid = gl_LocalInvocationID.x;
    red[tid] = x;
    barrier();
    for (uint s = BLOCK / 2u; s > 0u; s >>= 1) {
        if (tid < s) red[tid] = max(red[tid], red[tid + s]);
        barrier();
    }
    const float r = red[0];
    barrier();
    return r;
}

float reduce_sum(float x) {
    const uint tid = gl_LocalInvocationID.x;
    red[tid] = x;
    barrier();
    for (uint s = BLOCK / 2u; s > 0u; s >>= 1) {
        if (tid < s) red[tid] += red[tid + s];
        barrier();
    }
    const float r = red[0];
    barrier();
    return r;
}
#endif

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, b = gl_WorkGroupID.z, tid = gl_LocalInvocationID.x;
    const uint kv = h / pc.group;
    const uint pos = step_pos0 + t;
    const uint first = pc.window > 0u && pos + 1u > pc.window ? pos + 1u - pc.window : 0u;
    const uint n_keys = pos - first + 1u;
    const uint j0 = b * BLOCK;
    // Earlier queries of a few-token step see fewer keys than the last: their trailing
    // blocks are empty: the combine neither reads them nor (fused) counts them.
    if (j0 >= n_keys) return;
    const uint nb = min(uint(BLOCK), n_keys - j0);

    const uint qbase = (t * pc.n_heads + h) * pc.head_dim;
    for (uint d = tid; d < pc.head_dim; d += BLOCK) qs[d] = q[qbase + d];
    barrier();

    // Scores, one key per invocation. The block's key rows are staged DCHUNK columns at a
    // time, the invocations reading consecutive columns (coalesced), rather than each
    // invocation walking its own row.
    const uint kbase = kv * pc.k_head + (first + j0) * pc.k_row;
    float dot = 0.0;
    for (uint d0 = 0; d0 < pc.head_dim; d0 += DCHUNK) {
        const uint w = min(uint(DCHUNK), pc.head_dim - d0);
        for (uint j = 0; j < nb; ++j)
            for (uint d = tid; d < w; d += BLOCK) kt[j * PITCH + d] = k[kbase + j * pc.k_row + d0 + d];
        barrier();
        if (tid < nb)
            for (uint d = 0; d < w; ++d) dot += qs[d0 + d] * kt[tid * PITCH + d];
        barrier();  // the chunk is read before the next one replaces it
    }
    const float s = tid < nb ? dot * pc.scale : -1.0 / 0.0;
    const float m = reduce_max(s);
    const float p = tid < nb ? exp(s - m) : 0.0;
    ps[tid] = p;
    const float l = reduce_sum(p);  // its barriers also publish ps

    const uint pbase = ((t * pc.n_heads + h) * pc.n_blocks + b) * (pc.v_dim + 2u);
    const uint vbase = kv * pc.v_head + (first + j0) * pc.v_row;
    for (uint d = tid; d < pc.v_dim; d += BLOCK) {
        float acc = 0.0;
        for (uint j = 0; j < nb; ++j) acc += ps[j] * v[vbase + j * pc.v_row + d];
        partials[pbase + 2u + d] = acc;
    }
    if (tid == 0u) {
        partials[pbase] = m;
        partials[pbase + 1u] = l;
    }
#ifdef FUSED
    split_combine_when_last(h, t, (n_keys + BLOCK - 1u) / BLOCK, tid, BLOCK);
#endif
}
