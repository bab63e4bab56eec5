#version 450
// One token's routed-expert down products and their weighted sum in one dispatch, the
// experts chosen on the device (MST_VULKAN_MOE_FUSION; docs/gpu_decode_kernels.md, "The MoE
// half of a layer in fewer dispatches"): for output row r,
//   s = sum over the k chosen experts in ascending expert id of weights[j] * (Down_e x_j)[r]
// with e = ids[j] and x_j row j of x ([k][cols], what matvec_id_swiglu.comp wrote), then
//   residual 0:  o[r] = o[r] + w_1 d_1 + w_2 d_2 ...   (one expert at a time, combine_id.comp's)
//   residual 1:  o[r] = o[r] + s, s summed from 0     (routed_swiglu_by_id into zeros, then add)
// which matvec_id.comp's down dispatch, combine_id.comp and the residual add wrote in three
// commands and three levels. A workgroup takes ROWS output rows and walks the experts in
// ascending id itself, so the sum keeps that order; each product has matvec_id.comp's lane
// order and reduction (matvec_id_row.glsl's, interleaved over the experts below), so the
// result is the same bits. Negative ids are skipped as combine_id skips them; an id whose
// table entry is -1 adds 0 (w * 0) and records the miss, as matvec_id.
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
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common.glsl"

layout(constant_id = 0) const uint LANES = 32;
layout(constant_id = 1) const uint ROWS = 4;
layout(local_size_x_id = 0, local_size_y_id = 1) in;

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

#ifndef USE_SUBGROUP
shared float partial[ROWS][LANES];
#endif

uint x_base;  // the x of the expert unit_dot reads, in vec4s
#define X4(i) x4[x_base + (i)]
#include "matvec_unit.glsl"
#include "matvec_id_total.glsl"

// Up to CHUNK experts' products are computed together: their lane partials first, one unit
// step of every expert after another so that their loads are in flight at once, then their
// totals in ascending id. Each expert's partial adds its units in matvec_id_row.glsl's order
// (four at a time, then one at a time), so interleaving the experts changes no bit. Every
// loop over a chunk runs CHUNK times with constant bounds, so that the compiler can unroll
// it and keep the chunk's arrays in registers.
const uint CHUNK = 8u;
bool chunk_live[CHUNK];  // the chunk's i-th expert is chosen and on the device
uint chunk_row[CHUNK];   // its row r in the stack
uint chunk_x[CHUNK];     // its x, in vec4s
float chunk_part[CHUNK];

void chunk_partials(uint lane) {
    const uint n_units = pc.cols / UNIT;
    for (uint i = 0u; i < CHUNK; ++i) chunk_part[i] = 0.0;
    uint u = lane;
    for (; u + 3u * LANES < n_units; u += 4u * LANES)
        for (uint i = 0u; i < CHUNK; ++i)
            if (chunk_live[i]) {
                x_base = chunk_x[i];
                const uint wr = chunk_row[i];
                const float s0 = unit_dot(wr, u), s1 = unit_dot(wr, u + LANES);
                const float s2 = unit_dot(wr, u + 2u * LANES), s3 = unit_dot(wr, u + 3u * LANES);
                chunk_part[i] += (s0 + s1) + (s2 + s3);
            }
    for (; u < n_units; u += LANES)
        for (uint i = 0u; i < CHUNK; ++i)
            if (chunk_live[i]) {
                x_base = chunk_x[i];
                chunk_part[i] += unit_dot(chunk_row[i], u);
            }
}

void main() {
    const uint lane = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y;
    const uint r = gl_WorkGroupID.x * ROWS + ly;
    float total = pc.residual == 0u && r < pc.rows ? o[r] : 0.0;
    // The experts in ascending id, CHUNK at a time: the m-th smallest id each round (ids
    // are distinct; k is small). The same for every invocation, so the loops and the
    // barriers in them stay uniform.
    int last = -1;
    bool more = true;
    uint m = 0u;  // experts taken so far
    while (more && m < pc.k) {
        bool taken[CHUNK];  // the chunk's i-th place holds a chosen expert (on the device or not)
        uint picks[CHUNK];  // its j
        for (uint i = 0u; i < CHUNK; ++i) {
            taken[i] = false;
            chunk_live[i] = false;
            picks[i] = 0u;
            if (!more || m >= pc.k) continue;
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
                continue;
            }
            last = best;
            ++m;
            taken[i] = true;
            picks[i] = pick;
            const int slot = uint(best) < pc.n_experts ? table[best] : -1;
            if (slot < 0) {
                if (gl_LocalInvocationIndex == 0u)
                    atomicCompSwap(miss, 0u, 1u + (pc.layer << 16) + (uint(best) & 0xffffu));
            } else {
                chunk_live[i] = true;
                chunk_row[i] = uint(slot) * pc.rows + r;
                chunk_x[i] = pick * pc.x_stride;
            }
        }
        if (r < pc.rows) chunk_partials(lane);
        else for (uint i = 0u; i < CHUNK; ++i) chunk_part[i] = 0.0;  // a row past the end: its totals unused
        for (uint i = 0u; i < CHUNK; ++i) {
            if (!taken[i]) continue;
            float d = 0.0;  // a missing expert adds w * 0, as combine_id over matvec_id's zeros
            if (chunk_live[i]) d = row_total(chunk_part[i], ly, lane);
            total += ew[picks[i]] * d;
        }
    }
    if (lane == 0u && r < pc.rows) o[r] = pc.residual != 0u ? o[r] + total : total;
}
