#version 450
// y[r] = sum_c W[r][c] x[c] for ONE token (a decode step's dense products: q/k/v/o, router,
// lm_head), for rows of whole 16-byte units (f32: cols % 4 == 0; f16/bf16: cols % 8;
// q8/q4: cols % 32); matmul.comp takes the other shapes and batches of tokens.
// Why a kernel of its own: at one token matmul.comp walks a row one 16-byte load per lane
// at a time, so a lane has one load in flight and short rows (k/v/router) or the q8 path
// (byte reads) stay far from the memory's rate (bench_vulkan_prefill --decode). Here a
// lane takes four units of its row per step and issues all their loads before using them,
// for PER_LANE rows at once (matvec_rows.glsl). A workgroup is ROWS x LANES invocations and
// ROWS x PER_LANE rows (MST_VULKAN_MATVEC_TUNING's dense family); a row's partial sums
// meet as matvec_row_total.glsl says.
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
#include "matvec_rows.glsl"
#include "matvec_row_total.glsl"

void main() {
    const uint lane = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y;
    // This lane's rows: PER_LANE consecutive ones (matvec_rows.glsl).
    const uint r0 = (gl_WorkGroupID.x * ROWS + ly) * PER_LANE;
    for (uint p = 0u; p < PER_LANE; ++p) row_acc[p] = 0.0;
    if (r0 < pc.rows) lane_partials(r0, pc.rows - 1u, lane);
    for (uint p = 0u; p < PER_LANE; ++p) {
        const float total = row_total(row_acc[p], ly, lane);
        if (lane == 0u && r0 + p < pc.rows) y[r0 + p] = total;
    }
}
