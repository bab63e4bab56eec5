#version 450
// Decode attention split over positions, first pass, one workgroup per (KV head, query,
// block of 32 keys) serving the group's query heads (MST_VULKAN_SPLIT_GQA,
// op_attention_split.cpp): attention_split_rows.comp gives each query head its own
// workgroup, so a GQA group of 8 heads reads each key and value row 8 times (16 MB through
// L2 for 1 MB of cache on Qwen3-30B-A3B at 512 positions) and the merge has a workgroup per
// head. Here subgroup g takes query head kv * group + g: the group's subgroups read the
// same key rows together (one request to memory), the value rows are staged once in shared
// memory, their loads issued before the scores, and the last workgroup of a (KV head,
// query) merges its heads' blocks, a subgroup each. Per head the arithmetic is
// attention_split_rows.comp's in its order (a lane's dims of a key summed step by step,
// subgroupAdd, the block's softmax, the weighted values summed per that shader's
// subgroups of keys sg, sg + 4, ... and then across them), and the partials are written
// where it writes them, so the output is its bits (test_vulkan_attention_split_latency).
// Heads and values up to 128 wide, groups up to 8 (the shared memory).
//! variant attention_split_gqa
//! variant attention_split_gqa_fused -DFUSED
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#define BLOCK 32  // keys per workgroup: kSplitBlock in op_attention_split.cpp
#define NSG 4     // attention_split_rows.comp's subgroups: the order of the value sums
#define KEYS (BLOCK / NSG)
#define MAX_DIM4 32   // head_dim and v_dim up to 128
#define MAX_GROUP 8
#define VSTAGE 4      // value vec4s an invocation loads at once (the rest in a loop)

layout(constant_id = 0) const uint LANES = 32;  // the subgroup size
layout(constant_id = 1) const uint GROUP = 8;   // query heads per KV head: the subgroups
layout(local_size_x_id = 0, local_size_y_id = 1) in;

layout(std430, binding = 0) readonly buffer Q { vec4 q[]; };
layout(std430, binding = 1) readonly buffer K { vec4 k[]; };
layout(std430, binding = 2) readonly buffer V { vec4 v[]; };
// [n_tokens][n_heads][n_blocks][2 + v_dim]: m, l, then the weighted values.
#ifdef FUSED
layout(std430, binding = 3) coherent buffer Partials { float partials[]; };
#else
layout(std430, binding = 3) writeonly buffer Partials { float partials[]; };
#endif
layout(std430, binding = 4) readonly buffer Step { uint step_pos0; };

layout(push_constant) uniform Push {
    uint n_tokens, n_heads, group, head_dim, v_dim, pos0;
    uint k_head, v_head;
    uint k_row, v_row;
    float scale;
    uint window, has_sinks, n_ctx;
    uint n_blocks;
} pc;

#ifdef FUSED
layout(std430, binding = 5) readonly buffer Sinks { float sinks[]; };
layout(std430, binding = 6) writeonly buffer O { float o[]; };
layout(std430, binding = 7) coherent buffer Counter { uint counter[]; };  // per (query, KV head)
#include "attention_split_combine.glsl"
shared bool gqa_last;
#endif

shared vec4 qs[MAX_GROUP][MAX_DIM4];
shared vec4 vs[BLOCK][MAX_DIM4];
shared float ps[MAX_GROUP][BLOCK];

void main() {
    const uint kv = gl_WorkGroupID.x, t = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
    const uint lane = gl_LocalInvocationID.x, g = gl_LocalInvocationID.y, tid = g * LANES + lane;
    const uint n_threads = LANES * GROUP;
    const uint h = kv * GROUP + g;
    const uint pos = step_pos0 + t;
    const uint first = pc.window > 0u && pos + 1u > pc.window ? pos + 1u - pc.window : 0u;
    const uint n_keys = pos - first + 1u;
    const uint j0 = b * BLOCK;
    if (j0 >= n_keys) return;  // an earlier query's empty trailing block (as attention_split_rows)
    const uint nb = min(uint(BLOCK), n_keys - j0);
    const uint hd4 = pc.head_dim / 4u, vd4 = pc.v_dim / 4u;
    const uint kbase = (kv * pc.k_head + (first + j0) * pc.k_row) / 4u, krow4 = pc.k_row / 4u;
    const uint vbase = (kv * pc.v_head + (first + j0) * pc.v_row) / 4u, vrow4 = pc.v_row / 4u;

    // Latency: the value rows' first VSTAGE vec4s an invocation, the group's q rows and
    // each lane's first step of every key row are loaded together, before any is used.
    const uint n_v = nb * vd4;  // the block's value vec4s, row by row
    vec4 vst[VSTAGE];
    [[unroll]] for (uint i = 0; i < VSTAGE; ++i) {
        const uint e = min(tid + i * n_threads, n_v - 1u);
        vst[i] = v[vbase + (e / vd4) * vrow4 + e % vd4];
    }
    for (uint d = lane; d < hd4; d += LANES) qs[g][d] = q[(t * pc.n_heads + h) * hd4 + d];
    vec4 kr[BLOCK];
    [[unroll]] for (uint j = 0; j < BLOCK; ++j)
        kr[j] = lane < hd4 ? k[kbase + min(j, nb - 1u) * krow4 + lane] : vec4(0.0);
    for (uint e = tid + VSTAGE * n_threads; e < n_v; e += n_threads) vs[e / vd4][e % vd4] = v[vbase + (e / vd4) * vrow4 + e % vd4];
    [[unroll]] for (uint i = 0; i < VSTAGE; ++i) {
        const uint e = tid + i * n_threads;
        if (e < n_v) vs[e / vd4][e % vd4] = vst[i];
    }
    barrier();

    // Scores of head h: a lane's partial sum over its dims (d = lane, lane + LANES, ...),
    // then subgroupAdd, as attention_split_rows.comp's subgroup of the key does.
    float s[BLOCK];
    [[unroll]] for (uint j = 0; j < BLOCK; ++j) s[j] = 0.0;
    for (uint d = lane; d < hd4; d += LANES) {
        if (d != lane)
            [[unroll]] for (uint j = 0; j < BLOCK; ++j) kr[j] = k[kbase + min(j, nb - 1u) * krow4 + d];
        [[unroll]] for (uint j = 0; j < BLOCK; ++j) s[j] += dot(qs[g][d], kr[j]);
    }
    [[unroll]] for (uint j = 0; j < BLOCK; ++j) {
        if (j < nb) {  // uniform
            const float sj = subgroupAdd(s[j]);
            if (lane == 0u) ps[g][j] = sj * pc.scale;
        }
    }
    subgroupMemoryBarrierShared();
    subgroupBarrier();
    float m = -1.0 / 0.0;
    for (uint j = 0; j < nb; ++j) m = max(m, ps[g][j]);
    float l = 0.0;
    for (uint j = 0; j < nb; ++j) l += exp(ps[g][j] - m);

    // Weighted values: attention_split_rows.comp's subgroup sg sums keys sg, sg + NSG, ...
    // into part[sg], and part[0] + part[1] + ... is the block's; here a lane does the NSG
    // sums for its dims, then adds them in that order.
    float p[BLOCK];
    [[unroll]] for (uint j = 0; j < BLOCK; ++j) p[j] = j < nb ? exp(ps[g][j] - m) : 0.0;
    const uint pbase = ((t * pc.n_heads + h) * pc.n_blocks + b) * (pc.v_dim + 2u);
    for (uint d = lane; d < vd4; d += LANES) {
        vec4 part[NSG];
        [[unroll]] for (uint c = 0; c < NSG; ++c) {
            part[c] = vec4(0.0);
            [[unroll]] for (uint i = 0; i < KEYS; ++i)
                if (c + i * NSG < nb) part[c] += p[c + i * NSG] * vs[c + i * NSG][d];
        }
        vec4 acc = part[0];
        for (uint c = 1u; c < NSG; ++c) acc += part[c];
        for (uint c = 0; c < 4u; ++c) partials[pbase + 2u + 4u * d + c] = acc[c];
    }
    if (lane == 0u) {
        partials[pbase] = m;
        partials[pbase + 1u] = l;
    }
#ifdef FUSED
    // As split_combine_when_last, counting blocks per (query, KV head): the workgroup that
    // brings the count to `used` merges the group's heads, a subgroup each (the one-shot
    // merge, no barriers: the same bits as the chunked one), or, past its 32 blocks, one
    // head after another with the whole workgroup.
    const uint used = (n_keys + BLOCK - 1u) / BLOCK;
    const uint c = t * pc.n_heads + kv;
    memoryBarrierBuffer();
    barrier();
    if (tid == 0u) gqa_last = atomicAdd(counter[c], 1u) == used - 1u;
    barrier();
    if (!gqa_last) return;  // uniform over the workgroup
    memoryBarrierBuffer();
    if (used <= SPLIT_ONESHOT_MAX)
        split_combine_oneshot(h, t, used, lane, LANES);
    else
        for (uint g2 = 0; g2 < GROUP; ++g2) split_combine(kv * GROUP + g2, t, used, tid, n_threads);
    if (tid == 0u) counter[c] = 0u;
#endif
}
