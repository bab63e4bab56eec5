#version 450
// y[r] = sum_c W[r][c] x[c] for ONE token (a decode step's dense products: q/k/v/o, router,
// lm_head), for rows of whole 16-byte units (f32: cols % 4 == 0; f16/bf16: cols % 8;
// q8/q4: cols % 32); matmul.comp takes the other shapes and batches of tokens.
// Why a kernel of its own: at one token matmul.comp walks a row one 16-byte load per lane
// at a time, so a lane has one load in flight and short rows (k/v/router) or the q8 path
// (byte reads) stay far from the memory's rate (bench_vulkan_prefill --decode). Here a
// lane takes UNROLL units of its row per step and issues all their loads before using
// them. A workgroup is ROWS rows x LANES lanes; a row's partial sums meet with subgroupAdd
// when a row is one subgroup (the _sg variants), else through shared memory.
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

#ifndef USE_SUBGROUP
shared float partial[ROWS][LANES];
#endif

// Elements per unit: one 16-byte load of a float type, a quarter of a 32-weight block.
#ifdef W_F32
const uint UNIT = 4u;
#else
const uint UNIT = 8u;
#endif

// The dot product of unit u of row r with the matching elements of x.
float unit_dot(uint r, uint u) {
#if defined(W_F32)
    return dot(uintBitsToFloat(w4[r * (pc.cols / 4u) + u]), x4[u]);
#elif defined(W_F16) || defined(W_BF16)
    const uvec4 q = w4[r * (pc.cols / 8u) + u];
    const vec4 a = x4[2u * u], b = x4[2u * u + 1u];
#if defined(W_F16)
    const vec4 lo = vec4(unpackHalf2x16(q.x), unpackHalf2x16(q.y));
    const vec4 hi = vec4(unpackHalf2x16(q.z), unpackHalf2x16(q.w));
#else
    const vec4 lo = uintBitsToFloat(uvec4(q.x << 16, q.x & 0xffff0000u, q.y << 16, q.y & 0xffff0000u));
    const vec4 hi = uintBitsToFloat(uvec4(q.z << 16, q.z & 0xffff0000u, q.w << 16, q.w & 0xffff0000u));
#endif
    return dot(lo, a) + dot(hi, b);
#elif defined(W_Q8)
    // 34-byte blocks (f16 scale, 32 int8): part p holds bytes 2 + 8p .. 9 + 8p of its
    // block, 2-byte aligned, so it spans two words or three (read as 16-bit halves).
    const uint blk = u >> 2, part = u & 3u;
    const uint base = (r * (pc.cols / 32u) + blk) * 34u;
    const float d = f16_bits_to_f32(READ_U16(w, base));
    const uint a = base + 2u + 8u * part, wi = a >> 2;
    uint q0, q1;
    if ((a & 2u) == 0u) {
        q0 = w[wi];
        q1 = w[wi + 1u];
    } else {
        const uint w0 = w[wi], w1 = w[wi + 1u], w2 = w[wi + 2u];
        q0 = (w0 >> 16) | (w1 << 16);
        q1 = (w1 >> 16) | (w2 << 16);
    }
    const vec4 lo = vec4(ivec4(int(q0 << 24), int(q0 << 16), int(q0 << 8), int(q0)) >> 24);
    const vec4 hi = vec4(ivec4(int(q1 << 24), int(q1 << 16), int(q1 << 8), int(q1)) >> 24);
    const uint xb = (blk * 32u + part * 8u) / 4u;
    return d * (dot(lo, x4[xb]) + dot(hi, x4[xb + 1u]));
#elif defined(W_Q4)
    // 20-byte blocks (f16 d and m, then byte j = element j low nibble, j + 16 high): part
    // p takes elements 8p .. 8p + 7, the low nibbles of bytes 8p .. for p < 2, the high
    // nibbles of bytes 8(p - 2) .. above.
    const uint blk = u >> 2, part = u & 3u, shift = (part >> 1) * 4u;
    const uint wb = (r * (pc.cols / 32u) + blk) * 5u;
    const uint dm = w[wb];
    const uint q0 = w[wb + 1u + 2u * (part & 1u)], q1 = w[wb + 2u + 2u * (part & 1u)];
    const vec4 wa = vec4((uvec4(q0) >> uvec4(shift, shift + 8u, shift + 16u, shift + 24u)) & 15u);
    const vec4 wc = vec4((uvec4(q1) >> uvec4(shift, shift + 8u, shift + 16u, shift + 24u)) & 15u);
    const uint xb = (blk * 32u + part * 8u) / 4u;
    const vec4 a = x4[xb], c = x4[xb + 1u];
    return f16_bits_to_f32(dm & 0xffffu) * (dot(wa, a) + dot(wc, c)) +
           f16_bits_to_f32(dm >> 16) * dot(a + c, vec4(1.0));
#endif
}

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
#ifdef USE_SUBGROUP
    acc = subgroupAdd(acc);
    if (lane == 0u && r < pc.rows) y[r] = acc;
#else
    partial[ly][lane] = acc;
    barrier();
    for (uint s = LANES / 2u; s > 0u; s >>= 1) {
        if (lane < s) partial[ly][lane] += partial[ly][lane + s];
        barrier();
    }
    if (lane == 0u && r < pc.rows) y[r] = partial[ly][0];
#endif
}
