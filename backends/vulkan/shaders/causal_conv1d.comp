#version 450
// Causal depthwise conv1d with carried state. Invocations below n_tokens * channels each
// compute one output; the next hist * channels invocations write the new state (the last
// hist inputs of state and x together). The state in is a separate buffer from the state
// out, so their aliasing on the host does not matter here.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };        // [channels][kernel]
layout(std430, binding = 2) readonly buffer StateIn { float sin_[]; };// [hist][channels]
layout(std430, binding = 3) writeonly buffer Y { float y[]; };
layout(std430, binding = 4) writeonly buffer StateOut { float sout[]; };

layout(push_constant) uniform Push { uint n_tokens, channels, kernel, has_state, silu_act; } pc;

// Row s of the sequence extended by the state: state for s < 0.
float input_at(int s, uint c) {
    const int hist = int(pc.kernel) - 1;
    if (s >= 0) return x[uint(s) * pc.channels + c];
    return pc.has_state != 0u ? sin_[uint(hist + s) * pc.channels + c] : 0.0;
}

void main() {
    const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * 65535u * 256u;
    const uint outputs = pc.n_tokens * pc.channels;
    const uint hist = pc.kernel - 1u;
    if (i < outputs) {
        const uint t = i / pc.channels, c = i % pc.channels;
        float acc = 0.0;
        for (uint j = 0; j < pc.kernel; ++j) acc += w[c * pc.kernel + j] * input_at(int(t) - int(hist) + int(j), c);
        y[i] = pc.silu_act != 0u ? silu(acc) : acc;
    } else if (i < outputs + hist * pc.channels) {
        const uint k = i - outputs, r = k / pc.channels, c = k % pc.channels;
        sout[k] = input_at(int(pc.n_tokens) - int(hist) + int(r), c);
    }
}
