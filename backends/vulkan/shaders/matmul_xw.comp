#version 450
// y[t][c] = sum_r x[t][r] W[r][c] with W stored [rows][cols]: Backend::matmul_xw and
// Backend::matmul_transposed are the same product. One invocation per output column and
// tile of NT tokens; neighbouring invocations read neighbouring weights of a row.
//! variant matmul_xw_f32 -DW_F32
//! variant matmul_xw_f16 -DW_F16
//! variant matmul_xw_bf16 -DW_BF16
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
#define NT 4

layout(std430, binding = 0) readonly buffer Weights { uint w[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push { uint rows, cols, n_tokens; } pc;

void main() {
    const uint c = gl_GlobalInvocationID.x;
    const uint t0 = gl_WorkGroupID.y * NT;
    const uint nt = min(uint(NT), pc.n_tokens - t0);
    if (c >= pc.cols) return;
    float acc[NT];
    for (uint t = 0; t < NT; ++t) acc[t] = 0.0;
    for (uint r = 0; r < pc.rows; ++r) {
        const uint e = r * pc.cols + c;
#if defined(W_F32)
        const float wv = uintBitsToFloat(w[e]);
#elif defined(W_F16)
        const float wv = f16_bits_to_f32((w[e >> 1] >> ((e & 1u) * 16u)) & 0xffffu);
#else
        const float wv = bf16_bits_to_f32((w[e >> 1] >> ((e & 1u) * 16u)) & 0xffffu);
#endif
        for (uint t = 0; t < NT; ++t)
            if (t < nt) acc[t] += x[(t0 + t) * pc.rows + r] * wv;
    }
    for (uint t = 0; t < NT; ++t)
        if (t < nt) y[(t0 + t) * pc.cols + c] = acc[t];
}
