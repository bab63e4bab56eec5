#version 450
// y[r] = sum_c W[r][c] x[c] for ONE token (a decode step's dense products: q/k/v/o, router,
// lm_head), for rows of whole 16-byte units (f32: cols % 4 == 0; f16/bf16: cols % 8;
// q8/q4: cols % 32); matmul.comp takes the other shapes and batches of tokens.
// Why a kernel of its own: at one token matmul.comp walks a row one 16-byte load per lane
// at a time, so a lane has one load in flight and short rows (k/v/router) or the q8 path
// (byte reads) stay far from the memory's rate (bench_vulkan_prefill --decode). Here a
// lane takes UNROLL units of its row per step and issues all their loads before using
// them. A workgroup is ROWS rows x LANES lanes (MST_VULKAN_MATVEC_TUNING's dense family); a
// row's partial sums meet as matvec_row_total.glsl says.
//! variant matvec_f32 -DW_F32
//! variant matvec_f16 -DW_F16
//! variant matvec_bf16 -DW_BF16
//! variant matvec_q8 -DW_Q8
//! variant matvec_q4 -DW_Q4
//! variant matvec_f32_sg -DW_F32 -DUSE_SUBGROUP
//! variant matvec_f16_sg -DW_F16 -DUSE_SUBGROUP
//! variant matvec_bf16_sg -DW_BF16 -DUSE_SUBGROUP
//! variant matvec_q8_sg -DW_Q8 -DUSE_SUBGROUP
//! variant matvec_q4_sg -DW_Q4 -DUSE_SUBGROUP
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
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push { uint rows, cols; } pc;

// row_total's partials (matvec_row_total.glsl), in the _sg variants for rows of several subgroups.
shared float partial[ROWS][LANES];

#define X4(i) x4[i]
#include "matvec_unit.glsl"
#include "matvec_row_total.glsl"

void main() {
    const uint lane = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y;
    const uint r = gl_WorkGroupID.x * ROWS + ly;
    float acc = 0.0;
    if (r < pc.rows) {
        const uint n_units = pc.cols / UNIT;
        uint u = lane;
        // Four units per step, their loads issued together (independent of each other).
        for (; u + 3u * LANES < n_units; u += 4u * LANES) {
            const float s0 = unit_dot(r, u), s1 = unit_dot(r, u + LANES);
            const float s2 = unit_dot(r, u + 2u * LANES), s3 = unit_dot(r, u + 3u * LANES);
            acc += (s0 + s1) + (s2 + s3);
        }
        for (; u < n_units; u += LANES) acc += unit_dot(r, u);
    }
    acc = row_total(acc, ly, lane);
    if (lane == 0u && r < pc.rows) y[r] = acc;
}
