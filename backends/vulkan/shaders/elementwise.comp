#version 450
// Elementwise gates (mode in the push constants):
//   0 silu_mul:        out[i] = silu(a[i]) * b[i]
//   1 sigmoid_mul:     out[r][i] = a[r][i] * sigmoid(b[r][i / span])    (b is [rows][dim / span])
//   2 clamped_swiglu:  a is [rows][2 n] interleaved gate/up; out[r][i] = (u + 1) g sigmoid(alpha g)
//   3 add:             out[i] = a[i] + b[i]                               (the residual add)
//   4 copy_rows:       out[r][c] = a[r * span + c] for c < dim            (the KV append; span = source stride)
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Out { float o[]; };

layout(push_constant) uniform Push { uint n, mode, dim, span; float alpha, limit; } pc;

void main() {
    const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * 65535u * 256u;
    if (i >= pc.n) return;
    if (pc.mode == 0u) {
        o[i] = silu(a[i]) * b[i];
    } else if (pc.mode == 1u) {
        const uint r = i / pc.dim, c = i % pc.dim;
        const float g = b[r * (pc.dim / pc.span) + c / pc.span];
        o[i] = a[i] * (1.0 / (1.0 + exp(-g)));
    } else if (pc.mode == 3u) {
        o[i] = a[i] + b[i];
    } else if (pc.mode == 4u) {
        o[i] = a[(i / pc.dim) * pc.span + i % pc.dim];
    } else {
        const uint r = i / pc.dim, c = i % pc.dim;
        const float g = min(a[r * 2u * pc.dim + 2u * c], pc.limit);
        const float u = clamp(a[r * 2u * pc.dim + 2u * c + 1u], -pc.limit, pc.limit);
        o[i] = (u + 1.0) * (g / (1.0 + exp(-pc.alpha * g)));
    }
}
