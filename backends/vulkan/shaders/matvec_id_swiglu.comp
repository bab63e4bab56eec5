#version 450
// One token's routed-expert gate and up products with SwiGLU, the experts chosen on the
// device (MST_VULKAN_MOE_FUSION, docs/gpu_decode_kernels.md "The MoE half of a layer"):
// for the j-th chosen expert (workgroup z), e = ids[j],
//   y[j][r] = silu(g) * u,  g = sum_c Gate_e[r][c] x[c],  u = sum_c Up_e[r][c] x[c],
// which matvec_id.comp's gate and up dispatches and a silu_mul wrote in three commands and
// two barrier levels. Each row of the workgroup computes both products of its row with the
// lane order and reduction of matvec_id.comp (matvec_id_row.glsl), so the result is the
// same bits. Gate and up are two stacks (binding 0 and 6) with one slot table, the same
// type and shape. An id not on the device writes zeros and records the miss, as matvec_id.
//! variant matvec_id_swiglu_f32 -DW_F32
//! variant matvec_id_swiglu_f16 -DW_F16
//! variant matvec_id_swiglu_bf16 -DW_BF16
//! variant matvec_id_swiglu_q8 -DW_Q8
//! variant matvec_id_swiglu_q4 -DW_Q4
//! variant matvec_id_swiglu_f32_sg -DW_F32 -DUSE_SUBGROUP
//! variant matvec_id_swiglu_f16_sg -DW_F16 -DUSE_SUBGROUP
//! variant matvec_id_swiglu_bf16_sg -DW_BF16 -DUSE_SUBGROUP
//! variant matvec_id_swiglu_q8_sg -DW_Q8 -DUSE_SUBGROUP
//! variant matvec_id_swiglu_q4_sg -DW_Q4 -DUSE_SUBGROUP
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common.glsl"

layout(constant_id = 0) const uint LANES = 32;
layout(constant_id = 1) const uint ROWS = 4;
layout(local_size_x_id = 0, local_size_y_id = 1) in;

layout(std430, binding = 0) readonly buffer Gate { uint wg[]; };
layout(std430, binding = 0) readonly buffer Gate4 { uvec4 wg4[]; };
layout(std430, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Table { int table[]; };
layout(std430, binding = 4) readonly buffer Ids { int ids[]; };
layout(std430, binding = 5) buffer Miss { uint miss; };
layout(std430, binding = 6) readonly buffer Up { uint wu[]; };
layout(std430, binding = 6) readonly buffer Up4 { uvec4 wu4[]; };

// rows, cols: one expert's gate (and up) part; x_stride: unused (0: the experts share x),
// kept so that the push block is matvec_id.comp's; n_experts: entries of the table.
layout(push_constant) uniform Push { uint rows, cols, x_stride, n_experts, layer; } pc;

#ifndef USE_SUBGROUP
shared float partial[ROWS][LANES];
#endif

#define X4(i) x4[i]
// The row helpers twice, once per stack (matvec_unit.glsl reads W_WORDS and W_VEC4).
#define W_WORDS wg
#define W_VEC4 wg4
#define unit_dot unit_dot_gate
#define lane_partial lane_partial_gate
#include "matvec_unit.glsl"
#include "matvec_id_row.glsl"
#undef W_WORDS
#undef W_VEC4
#undef unit_dot
#undef lane_partial
#define W_WORDS wu
#define W_VEC4 wu4
#define unit_dot unit_dot_up
#define lane_partial lane_partial_up
#include "matvec_unit.glsl"
#include "matvec_id_row.glsl"
#include "matvec_id_total.glsl"

void main() {
    const uint lane = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y, j = gl_WorkGroupID.z;
    const uint r = gl_WorkGroupID.x * ROWS + ly;
    const int id = ids[j];
    // Uniform over the workgroup (one j), so the early return keeps the barriers whole.
    const int slot = id >= 0 && uint(id) < pc.n_experts ? table[id] : -1;
    if (slot < 0) {
        if (r < pc.rows) y[j * pc.rows + r] = 0.0;
        if (gl_LocalInvocationIndex == 0u) atomicCompSwap(miss, 0u, 1u + (pc.layer << 16) + (uint(id) & 0xffffu));
        return;
    }
    const uint wr = uint(slot) * pc.rows + r;
    const float g = row_total(r < pc.rows ? lane_partial_gate(wr, lane) : 0.0, ly, lane);
    const float u = row_total(r < pc.rows ? lane_partial_up(wr, lane) : 0.0, ly, lane);
    if (lane == 0u && r < pc.rows) y[j * pc.rows + r] = silu(g) * u;
}
