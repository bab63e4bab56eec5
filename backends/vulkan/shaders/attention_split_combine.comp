#version 450
// Decode attention split over positions, second pass: one workgroup per (query head,
// query) merges the blocks attention_split.comp wrote (attention_split_combine.glsl says
// how; the first pass's fused variants run the same merge in their last workgroup instead).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;

// Keys a block: 32 as in attention_split.comp, or attention_split_rows.comp's larger
// blocks (MST_VULKAN_SPLIT_BLOCK).
layout(constant_id = 0) const uint BLOCK = 32;

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

#include "attention_split_combine.glsl"

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
    const uint pos = step_pos0 + t;
    const uint first = pc.window > 0u && pos + 1u > pc.window ? pos + 1u - pc.window : 0u;
    const uint n_keys = pos - first + 1u;
    split_combine(h, t, (n_keys + BLOCK - 1u) / BLOCK, gl_LocalInvocationID.x, 64u);  // the blocks its keys fill
}
