#version 450
// One token's routed-expert products with the experts chosen on the device: for the j-th
// chosen expert (workgroup z), y[j][r] = sum_c W_e[r][c] x_j[c], e = ids[j], where W_e is
// the slot table[e] of a stack of one part (gate, up or down) of every resident expert of
// a layer (backends/vulkan/expert_slots.h), slot s at rows s * rows. x_j is x itself for
// the gate and up products (x_stride 0) and row j of x for the down product. The host
// records this without knowing the ids, so a step needs no wait for them
// (docs/device_graph.md, "One submission per resident decode step").
// An id whose table entry is -1 (the expert is not on the device) or outside the table
// writes zeros and records the first such (layer, id) in `miss`, which the host reads
// with the step's results and turns into an error: never a token from missing weights.
// Rows are whole 16-byte units, as matvec.comp's (f32: cols % 4; f16/bf16: % 8; q8/q4: % 32).
//! variant matvec_id_f32 -DW_F32
//! variant matvec_id_f16 -DW_F16
//! variant matvec_id_bf16 -DW_BF16
//! variant matvec_id_q8 -DW_Q8
//! variant matvec_id_q4 -DW_Q4
//! variant matvec_id_f32_sg -DW_F32 -DUSE_SUBGROUP
//! variant matvec_id_f16_sg -DW_F16 -DUSE_SUBGROUP
//! variant matvec_id_bf16_sg -DW_BF16 -DUSE_SUBGROUP
//! variant matvec_id_q8_sg -DW_Q8 -DUSE_SUBGROUP
//! variant matvec_id_q4_sg -DW_Q4 -DUSE_SUBGROUP
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
layout(std430, binding = 3) readonly buffer Table { int table[]; };
layout(std430, binding = 4) readonly buffer Ids { int ids[]; };
layout(std430, binding = 5) buffer Miss { uint miss; };

// rows, cols: one expert's part; x_stride: vec4s between the x of two chosen experts (0:
// they share x); n_experts: entries of the table; layer: named in a miss.
layout(push_constant) uniform Push { uint rows, cols, x_stride, n_experts, layer; } pc;

// row_total's partials (matvec_row_total.glsl), in the _sg variants for rows of several subgroups.
shared float partial[ROWS][LANES];

uint x_base;  // this workgroup's x, in vec4s
#define X4(i) x4[x_base + (i)]
#include "matvec_unit.glsl"
// A lane's rows (PER_LANE: the combine family's P for the down products; gate and up keep
// the default, 1), each summed in matvec_id_row.glsl's order.
#include "matvec_rows.glsl"
#include "matvec_row_total.glsl"

void main() {
    const uint lane = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y, j = gl_WorkGroupID.z;
    // This lane's rows of the expert: PER_LANE consecutive ones.
    const uint r0 = (gl_WorkGroupID.x * ROWS + ly) * PER_LANE;
    const int id = ids[j];
    // Uniform over the workgroup (one j), so the early return keeps the barriers below whole.
    const int slot = id >= 0 && uint(id) < pc.n_experts ? table[id] : -1;
    if (slot < 0) {
        for (uint p = 0u; p < PER_LANE; ++p)
            if (r0 + p < pc.rows) y[j * pc.rows + r0 + p] = 0.0;
        if (gl_LocalInvocationIndex == 0u) atomicCompSwap(miss, 0u, 1u + (pc.layer << 16) + (uint(id) & 0xffffu));
        return;
    }
    x_base = j * pc.x_stride;
    const uint base = uint(slot) * pc.rows;  // the expert's first row in the stack
    for (uint p = 0u; p < PER_LANE; ++p) row_acc[p] = 0.0;
    if (r0 < pc.rows) lane_partials(base + r0, base + pc.rows - 1u, lane);
    for (uint p = 0u; p < PER_LANE; ++p) {
        const float acc = row_total(row_acc[p], ly, lane);
        if (lane == 0u && r0 + p < pc.rows) y[j * pc.rows + r0 + p] = acc;
    }
}
