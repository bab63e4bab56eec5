#version 450
// One token's routed-expert gate and up products with SwiGLU, the experts chosen on the
// device (MST_VULKAN_MOE_FUSION; docs/gpu_decode_kernels.md, "The MoE half of a layer in
// fewer dispatches"): for the j-th chosen expert (workgroup z), e = ids[j],
//   y[j][r] = silu(g) * u,  g = sum_c Gate_e[r][c] x[c],  u = sum_c Up_e[r][c] x[c],
// which matvec_id.comp's gate and up dispatches and a silu_mul wrote in three commands and
// two barrier levels. Each row of the workgroup computes both products of its row, their
// loads interleaved, each with the lane order and reduction of matvec_id.comp
// (matvec_id_row.glsl), so the result is the same bits; a lane may take several rows
// (PER_LANE), each summed so. Gate and up are two stacks (binding 0 and 6) with one slot table, the same
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
#extension GL_KHR_shader_subgroup_basic : require
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

// row_total's partials (matvec_row_total.glsl), in the _sg variants for rows of several subgroups.
shared float partial[ROWS][LANES];

#define X4(i) x4[i]
// The unit products twice, once per stack (matvec_unit.glsl reads W_WORDS and W_VEC4).
#define W_WORDS wg
#define W_VEC4 wg4
#define unit_dot unit_dot_gate
#define unit_dot_x unit_dot_gate_x
#include "matvec_unit.glsl"
#undef W_WORDS
#undef W_VEC4
#undef unit_dot
#undef unit_dot_x
#define W_WORDS wu
#define W_VEC4 wu4
#define unit_dot unit_dot_up
#define unit_dot_x unit_dot_up_x
#include "matvec_unit.glsl"
#undef W_WORDS
#undef W_VEC4
#undef unit_dot
#undef unit_dot_x
#include "matvec_row_total.glsl"

// Rows a lane takes (MST_VULKAN_MATVEC_TUNING=swiglu=LxRxP; matvec_rows.glsl says why): P
// consecutive rows of the expert, each unit's x loaded once for the P gate rows and P up
// rows. The lane's partial sums per row (private arrays, in registers after specialisation).
layout(constant_id = 4) const uint PER_LANE = 1;
float gate_acc[PER_LANE], up_acc[PER_LANE];

// Adds the lane's partial sums of gate and up rows wr0 .. wr0 + PER_LANE - 1 (rows of the
// stack; rows past `last`, the expert's last, read row `last` again and are never stored)
// to gate_acc and up_acc, their loads in flight at once, each row in matvec_id_row.glsl's
// order: four units at a time, then one at a time.
void lane_partials(uint wr0, uint last, uint lane) {
    const uint n_units = pc.cols / UNIT;
    uint u = lane;
    for (; u + 3u * LANES < n_units; u += 4u * LANES) {
        const UnitX x0 = unit_x(u), x1 = unit_x(u + LANES), x2 = unit_x(u + 2u * LANES), x3 = unit_x(u + 3u * LANES);
        for (uint p = 0u; p < PER_LANE; ++p) {
            const uint wr = PER_LANE == 1u ? wr0 : min(wr0 + p, last);
            const float g0 = unit_dot_gate_x(wr, u, x0), g1 = unit_dot_gate_x(wr, u + LANES, x1);
            const float g2 = unit_dot_gate_x(wr, u + 2u * LANES, x2), g3 = unit_dot_gate_x(wr, u + 3u * LANES, x3);
            const float u0 = unit_dot_up_x(wr, u, x0), u1 = unit_dot_up_x(wr, u + LANES, x1);
            const float u2 = unit_dot_up_x(wr, u + 2u * LANES, x2), u3 = unit_dot_up_x(wr, u + 3u * LANES, x3);
            gate_acc[p] += (g0 + g1) + (g2 + g3);
            up_acc[p] += (u0 + u1) + (u2 + u3);
        }
    }
    for (; u < n_units; u += LANES) {
        const UnitX x0 = unit_x(u);
        for (uint p = 0u; p < PER_LANE; ++p) {
            const uint wr = PER_LANE == 1u ? wr0 : min(wr0 + p, last);
            gate_acc[p] += unit_dot_gate_x(wr, u, x0);
            up_acc[p] += unit_dot_up_x(wr, u, x0);
        }
    }
}

void main() {
    const uint lane = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y, j = gl_WorkGroupID.z;
    // This lane's rows of the expert: PER_LANE consecutive ones.
    const uint r0 = (gl_WorkGroupID.x * ROWS + ly) * PER_LANE;
    const int id = ids[j];
    // Uniform over the workgroup (one j), so the early return keeps the barriers whole.
    const int slot = id >= 0 && uint(id) < pc.n_experts ? table[id] : -1;
    if (slot < 0) {
        for (uint p = 0u; p < PER_LANE; ++p)
            if (r0 + p < pc.rows) y[j * pc.rows + r0 + p] = 0.0;
        if (gl_LocalInvocationIndex == 0u) atomicCompSwap(miss, 0u, 1u + (pc.layer << 16) + (uint(id) & 0xffffu));
        return;
    }
    const uint base = uint(slot) * pc.rows;
    for (uint p = 0u; p < PER_LANE; ++p) {
        gate_acc[p] = 0.0;
        up_acc[p] = 0.0;
    }
    if (r0 < pc.rows) lane_partials(base + r0, base + pc.rows - 1u, lane);
    for (uint p = 0u; p < PER_LANE; ++p) {
        const float g = row_total(gate_acc[p], ly, lane), u = row_total(up_acc[p], ly, lane);
        if (lane == 0u && r0 + p < pc.rows) y[j * pc.rows + r0 + p] = silu(g) * u;
    }
}
