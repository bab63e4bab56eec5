#version 450
// Row normalisations, one workgroup per row (mode in the push constants):
//   0 rms_norm:       y = x / sqrt(mean(x^2) + eps) * (offset + w)
//   1 rms_norm_gated: y = w * (x / sqrt(mean(x^2) + eps)) * silu(gate)
//   2 l2_norm:        y = x / sqrt(sum(x^2) + eps)
// The sum of squares is reduced through shared memory (every device has it; the op is
// a small part of a layer).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) readonly buffer Gate { float gate[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push { uint dim, mode; float eps, offset; } pc;

shared float partial[256];

void main() {
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * 65535u;
    const uint tid = gl_LocalInvocationID.x;
    const uint base = row * pc.dim;
    float s = 0.0;
    for (uint i = tid; i < pc.dim; i += 256u) s += x[base + i] * x[base + i];
    partial[tid] = s;
    barrier();
    for (uint k = 128u; k > 0u; k >>= 1) {
        if (tid < k) partial[tid] += partial[tid + k];
        barrier();
    }
    const float sum = partial[0];
    const float inv = pc.mode == 2u ? inversesqrt(sum + pc.eps) : inversesqrt(sum / float(pc.dim) + pc.eps);
    for (uint i = tid; i < pc.dim; i += 256u) {
        const float v = x[base + i];
        if (pc.mode == 0u) y[base + i] = v * inv * (pc.offset + w[i]);
        else if (pc.mode == 1u) y[base + i] = w[i] * (v * inv) * silu(gate[base + i]);
        else y[base + i] = v * inv;
    }
}
