#version 450
// Decode attention split over positions, second pass: one workgroup per (query head,
// query) merges the blocks attention_split.comp wrote. With M the largest block maximum
// (and the sink's logit, a key with no value), each block's sum and values are rescaled
// by exp(m_b - M): out = sum_b exp(m_b - M) acc_b / (sum_b exp(m_b - M) l_b + exp(sink - M)).
layout(local_size_x = 64) in;

#define BLOCK 32  // as in attention_split.comp

layout(std430, binding = 0) readonly buffer Partials { float partials[]; };
layout(std430, binding = 1) readonly buffer Sinks { float sinks[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };

// The step's first position, from memory rather than the push constants (whose pos0 and
// n_ctx are 0), so that one recorded command serves every decode step (replay).
layout(std430, binding = 3) readonly buffer Step { uint step_pos0; };

layout(push_constant) uniform Push {
    uint n_tokens, n_heads, group, head_dim, v_dim, pos0;
    uint k_head, v_head;
    uint k_row, v_row;
    float scale;
    uint window, has_sinks, n_ctx;
    uint n_blocks;
} pc;

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    const uint pos = step_pos0 + t;
    const uint first = pc.window > 0u && pos + 1u > pc.window ? pos + 1u - pc.window : 0u;
    const uint n_keys = pos - first + 1u;
    const uint used = (n_keys + BLOCK - 1u) / BLOCK;  // blocks this query's keys fill
    const uint stride = pc.v_dim + 2u;
    const uint base = (t * pc.n_heads + h) * pc.n_blocks * stride;

    // Every block holds at least one key, so M is finite and no weight is NaN.
    float big = pc.has_sinks != 0u ? sinks[h] : -1.0 / 0.0;
    for (uint b = 0; b < used; ++b) big = max(big, partials[base + b * stride]);
    float l = pc.has_sinks != 0u ? exp(sinks[h] - big) : 0.0;
    for (uint b = 0; b < used; ++b) l += partials[base + b * stride + 1u] * exp(partials[base + b * stride] - big);
    const float inv = 1.0 / l;

    const uint obase = (t * pc.n_heads + h) * pc.v_dim;
    for (uint d = tid; d < pc.v_dim; d += 64u) {
        float acc = 0.0;
        for (uint b = 0; b < used; ++b)
            acc += exp(partials[base + b * stride] - big) * partials[base + b * stride + 2u + d];
        o[obase + d] = acc * inv;
    }
}
