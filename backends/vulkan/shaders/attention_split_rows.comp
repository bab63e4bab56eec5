#version 450
// Decode attention split over positions, first pass, a subgroup per key row: the same
// work and output as attention_split.comp (one workgroup per query head, query and block
// of BLOCK keys, writing the block's maximum, sum and weighted values for
// attention_split_combine.comp), for devices with subgroup arithmetic and rows of whole
// vec4s (op_attention_split.cpp picks it). Why: attention_split.comp gives each key one
// invocation that walks its row in series (a row staged through shared memory first), so
// a block costs some 3 x 128 dependent steps; here the LANES lanes of a subgroup read one
// key row together (a 128-wide head is one 16-byte load per lane) and add with
// subgroupAdd, the NSG subgroups taking every NSG-th key, and the values are summed the
// same way, each lane owning vec4s of the value row. On an H100 the split's first pass
// then costs a few memory latencies instead of hundreds of steps.
// The _fused variant also merges the blocks itself (attention_split_combine.glsl's
// split_combine_when_last), in place of the combine's dispatch.
//! variant attention_split_rows
//! variant attention_split_rows_fused -DFUSED
//! variant attention_split_rows_b64 -DKEYS=16
//! variant attention_split_rows_fused_b64 -DFUSED -DKEYS=16
//! variant attention_split_rows_b128 -DKEYS=32
//! variant attention_split_rows_fused_b128 -DFUSED -DKEYS=32
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#define NSG 4     // subgroups per workgroup
// Keys a subgroup takes: 8 makes blocks of 32 keys (kSplitBlock in op_attention_split.cpp,
// BLOCK of the other split shaders); the _b64 and _b128 variants' 16 and 32 make blocks of
// 64 and 128 (MST_VULKAN_SPLIT_BLOCK): fewer blocks to merge and fewer workgroups at short
// contexts, each subgroup holding KEYS rows of k and of v in flight (32: may spill).
#ifndef KEYS
#define KEYS 8
#endif
#define BLOCK (NSG * KEYS)  // keys per workgroup
#define MAX_DIM4 256  // head_dim and v_dim up to 1024 (kSplitMaxHeadDim)

layout(constant_id = 0) const uint LANES = 32;  // the subgroup size
layout(local_size_x_id = 0, local_size_y = NSG) in;

layout(std430, binding = 0) readonly buffer Q { vec4 q[]; };
layout(std430, binding = 1) readonly buffer K { vec4 k[]; };
layout(std430, binding = 2) readonly buffer V { vec4 v[]; };
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
    uint k_head, v_head;  // elements between kv heads in k and in v (multiples of 4 here)
    uint k_row, v_row;    // elements between positions (multiples of 4 here)
    float scale;
    uint window, has_sinks, n_ctx;
    uint n_blocks;
} pc;

#ifdef FUSED
layout(std430, binding = 5) readonly buffer Sinks { float sinks[]; };
layout(std430, binding = 6) writeonly buffer O { float o[]; };
layout(std430, binding = 7) coherent buffer Counter { uint counter[]; };  // per (query, head)
#define SPLIT_ONESHOT_ID 1  // the merge's loads all at once (attention_split_combine.glsl)
#include "attention_split_combine.glsl"
#endif

shared vec4 qs[MAX_DIM4];
shared float ps[BLOCK];
shared vec4 part[NSG][MAX_DIM4];

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
    const uint lane = gl_LocalInvocationID.x, sg = gl_LocalInvocationID.y, tid = sg * LANES + lane;
    const uint kv = h / pc.group;
    const uint pos = step_pos0 + t;
    const uint first = pc.window > 0u && pos + 1u > pc.window ? pos + 1u - pc.window : 0u;
    const uint n_keys = pos - first + 1u;
    const uint j0 = b * BLOCK;
    // Earlier queries of a few-token step see fewer keys than the last: their trailing
    // blocks are empty: the combine neither reads them nor (fused) counts them.
    if (j0 >= n_keys) return;
    const uint nb = min(uint(BLOCK), n_keys - j0);
    const uint hd4 = pc.head_dim / 4u, vd4 = pc.v_dim / 4u;

    const uint qbase = (t * pc.n_heads + h) * hd4;
    for (uint d = tid; d < hd4; d += LANES * NSG) qs[d] = q[qbase + d];
    for (uint j = tid; j < BLOCK; j += LANES * NSG) ps[j] = -1.0 / 0.0;

    // Latency: subgroup sg's KEYS keys (sg, sg + NSG, ...) are loaded together, a step (a
    // lane's vec4 of each row) at a time, the next step's loads issued before this step's
    // sums; the first step of the keys and of the values before q's barrier, so that q's,
    // k's and v's round trips overlap rather than follow one another. A key past the
    // block's end reads the last key's row, unused. The sums are those of one key at a
    // time, in the same order.
    const uint kbase = (kv * pc.k_head + (first + j0) * pc.k_row) / 4u, krow4 = pc.k_row / 4u;
    const uint vbase = (kv * pc.v_head + (first + j0) * pc.v_row) / 4u, vrow4 = pc.v_row / 4u;
    uint row[KEYS];
    vec4 kr[KEYS], vr[KEYS];
    [[unroll]] for (uint i = 0; i < KEYS; ++i) {
        row[i] = min(sg + i * NSG, nb - 1u);
        kr[i] = lane < hd4 ? k[kbase + row[i] * krow4 + lane] : vec4(0.0);
        vr[i] = lane < vd4 ? v[vbase + row[i] * vrow4 + lane] : vec4(0.0);
    }
    barrier();

    // Scores: subgroup sg takes keys sg, sg + NSG, ...; its lanes split the row.
    float s[KEYS];
    [[unroll]] for (uint i = 0; i < KEYS; ++i) s[i] = 0.0;
    for (uint d = lane; d < hd4; d += LANES) {
        const vec4 kd[KEYS] = kr;
        if (d + LANES < hd4)
            [[unroll]] for (uint i = 0; i < KEYS; ++i) kr[i] = k[kbase + row[i] * krow4 + d + LANES];
        [[unroll]] for (uint i = 0; i < KEYS; ++i) s[i] += dot(qs[d], kd[i]);
    }
    [[unroll]] for (uint i = 0; i < KEYS; ++i) {
        const uint j = sg + i * NSG;
        if (j < nb) {  // uniform over the subgroup
            const float sj = subgroupAdd(s[i]);
            if (lane == 0u) ps[j] = sj * pc.scale;
        }
    }
    barrier();
    float m = -1.0 / 0.0;
    for (uint j = 0; j < nb; ++j) m = max(m, ps[j]);  // a few shared reads, the same for every invocation
    float l = 0.0;
    for (uint j = 0; j < nb; ++j) l += exp(ps[j] - m);

    // Weighted values: subgroup sg sums its keys' rows, each lane owning vec4s of the row;
    // the subgroups' sums meet in shared memory. The weights, exp(ps[j] - m), found once.
    float p[KEYS];
    [[unroll]] for (uint i = 0; i < KEYS; ++i) p[i] = exp(ps[sg + i * NSG] - m);
    for (uint d = lane; d < vd4; d += LANES) {
        const vec4 vd[KEYS] = vr;
        if (d + LANES < vd4)
            [[unroll]] for (uint i = 0; i < KEYS; ++i) vr[i] = v[vbase + row[i] * vrow4 + d + LANES];
        vec4 acc = vec4(0.0);
        [[unroll]] for (uint i = 0; i < KEYS; ++i)
            if (sg + i * NSG < nb) acc += p[i] * vd[i];
        part[sg][d] = acc;
    }
    barrier();
    const uint pbase = ((t * pc.n_heads + h) * pc.n_blocks + b) * (pc.v_dim + 2u);
    for (uint d = tid; d < vd4; d += LANES * NSG) {
        vec4 acc = part[0][d];
        for (uint i = 1u; i < NSG; ++i) acc += part[i][d];
        for (uint c = 0; c < 4u; ++c) partials[pbase + 2u + 4u * d + c] = acc[c];
    }
    if (tid == 0u) {
        partials[pbase] = m;
        partials[pbase + 1u] = l;
    }
#ifdef FUSED
    split_combine_when_last(h, t, (n_keys + BLOCK - 1u) / BLOCK, tid, LANES * NSG);
#endif
}
