#version 450
// One token's routed-expert down products and their weighted sum in one dispatch, the
// experts chosen on the device (MST_VULKAN_MOE_FUSION; docs/gpu_decode_kernels.md, "The MoE
// half of a layer in fewer dispatches"): for output row r,
//   s = sum over the k chosen experts in ascending expert id of weights[j] * (Down_e x_j)[r]
// with e = ids[j] and x_j row j of x ([k][cols], what matvec_id_swiglu.comp wrote), then
//   residual 0:  o[r] = o[r] + w_1 d_1 + w_2 d_2 ...   (one expert at a time, combine_id.comp's)
//   residual 1:  o[r] = o[r] + s, s summed from 0     (routed_swiglu_by_id into zeros, then add)
// which matvec_id.comp's down dispatch, combine_id.comp and the residual add wrote in three
// commands and three levels. A workgroup takes ROWS output rows for up to EXPERTS experts at
// once: slice z of the workgroup (LANES x ROWS invocations) computes the z-th expert of the
// round, in ascending id, with matvec_id.comp's lane order and reduction
// (matvec_id_row.glsl, matvec_row_total.glsl), and leaves its row totals in shared memory;
// then one invocation per row adds the round's totals in ascending id, so the result is the
// same bits with the k experts' products in parallel (the grid has the down product's
// parallelism again, not 1/k of it). Negative ids are skipped as combine_id skips them; an
// id whose table entry is -1 adds 0 (w * 0) and records the miss, as matvec_id.
//! variant matvec_id_combine_f32 -DW_F32
//! variant matvec_id_combine_f16 -DW_F16
//! variant matvec_id_combine_bf16 -DW_BF16
//! variant matvec_id_combine_q8 -DW_Q8
//! variant matvec_id_combine_q4 -DW_Q4
//! variant matvec_id_combine_f32_sg -DW_F32 -DUSE_SUBGROUP
//! variant matvec_id_combine_f16_sg -DW_F16 -DUSE_SUBGROUP
//! variant matvec_id_combine_bf16_sg -DW_BF16 -DUSE_SUBGROUP
//! variant matvec_id_combine_q8_sg -DW_Q8 -DUSE_SUBGROUP
//! variant matvec_id_combine_q4_sg -DW_Q4 -DUSE_SUBGROUP
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common.glsl"

layout(constant_id = 0) const uint LANES = 32;
layout(constant_id = 1) const uint ROWS = 4;
// Experts computed at once (the workgroup's z); the op code takes the most the device's
// workgroup limits allow, up to 8 (the top-k of the models at hand).
layout(constant_id = 2) const uint EXPERTS = 8;
layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;

layout(std430, binding = 0) readonly buffer Weights { uint w[]; };
layout(std430, binding = 0) readonly buffer Weights4 { uvec4 w4[]; };
layout(std430, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 2) buffer Out { float o[]; };
layout(std430, binding = 3) readonly buffer Table { int table[]; };
layout(std430, binding = 4) readonly buffer Ids { int ids[]; };
layout(std430, binding = 5) buffer Miss { uint miss; };
layout(std430, binding = 6) readonly buffer ExpertWeights { float ew[]; };

// rows, cols: one expert's down part; x_stride: vec4s between two experts' x rows;
// n_experts: entries of the table; k: experts chosen; residual: the sum's form (above).
layout(push_constant) uniform Push { uint rows, cols, x_stride, n_experts, layer, k, residual; } pc;

// row_total's partials (matvec_row_total.glsl): one row per (expert slice, row), indexed
// lz * ROWS + ly.
shared float partial[EXPERTS * ROWS][LANES];
// The round's down rows d (row ly, the round's z-th expert) and their js, read by each
// row's summing invocation.
shared float round_d[ROWS][EXPERTS];
shared uint round_pick[EXPERTS];  // the round's z-th expert's j

uint x_base;  // the x of the expert unit_dot reads, in vec4s
#define X4(i) x4[x_base + (i)]
#include "matvec_unit.glsl"
#include "matvec_id_row.glsl"
#include "matvec_row_total.glsl"

void main() {
    const uint lane = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y, lz = gl_LocalInvocationID.z;
    const uint r = gl_WorkGroupID.x * ROWS + ly;
    const bool sums = lane == 0u && lz == 0u && r < pc.rows;  // the row's summing invocation
    float total = sums && pc.residual == 0u ? o[r] : 0.0;
    // The experts in ascending id, EXPERTS a round: the m-th smallest id each time (ids are
    // distinct; k is small). Every invocation makes the same picks, so the loop and the
    // barriers in it stay uniform; each keeps the pick of its slice.
    int last = -1;
    bool more = true;
    uint m = 0u;  // experts taken so far
    while (more && m < pc.k) {
        uint taken = 0u;  // the round's experts (chosen, on the device or not)
        int my_pick = -1;  // this slice's j, -1 for none
        int my_slot = -1;
        for (uint i = 0u; i < EXPERTS; ++i) {
            if (!more || m >= pc.k) break;
            uint pick = 0u;
            int best = 0x7fffffff;
            for (uint j = 0u; j < pc.k; ++j) {
                const int id = ids[j];
                if (id > last && id < best) {
                    best = id;
                    pick = j;
                }
            }
            if (best == 0x7fffffff) {
                more = false;
                break;
            }
            last = best;
            ++m;
            ++taken;
            const int slot = uint(best) < pc.n_experts ? table[best] : -1;
            if (slot < 0 && gl_LocalInvocationIndex == 0u)
                atomicCompSwap(miss, 0u, 1u + (pc.layer << 16) + (uint(best) & 0xffffu));
            if (i == lz) {
                my_pick = int(pick);
                my_slot = slot;
            }
        }
        const bool live = my_slot >= 0 && r < pc.rows;  // uniform over a slice's row
        float part = 0.0;
        if (live) {
            x_base = uint(my_pick) * pc.x_stride;
            part = lane_partial(uint(my_slot) * pc.rows + r, lane);
        }
        // Every invocation takes part (barriers without subgroups); a missing expert adds
        // w * 0, as combine_id over matvec_id's zeros.
        const float t = row_total(part, lz * ROWS + ly, lane);
        if (lane == 0u && my_pick >= 0) {
            round_d[ly][lz] = live ? t : 0.0;
            if (ly == 0u) round_pick[lz] = uint(my_pick);
        }
        barrier();
        // The row's sum in ascending id: the round's slices in order, each w * d as before.
        if (sums)
            for (uint i = 0u; i < taken; ++i) total += ew[round_pick[i]] * round_d[ly][i];
        barrier();  // the next round writes round_d and round_pick again
    }
    if (sums) o[r] = pc.residual != 0u ? o[r] + total : total;
}
