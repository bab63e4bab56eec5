#version 450
// The last step of Backend::routed_swiglu: out[t][c] += sum over t's uses, in expert
// order, of weight * y[row][c]. uses holds (row of y, weight bits) pairs; the uses of
// token t are [offsets[t], offsets[t + 1]).
layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer Uses { uint uses[]; };
layout(std430, binding = 2) readonly buffer Offsets { uint offsets[]; };
layout(std430, binding = 3) buffer Out { float o[]; };

layout(push_constant) uniform Push { uint n_tokens, hidden; } pc;

void main() {
    const uint c = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    if (c >= pc.hidden) return;
    float acc = o[t * pc.hidden + c];
    for (uint u = offsets[t]; u < offsets[t + 1u]; ++u)
        acc += uintBitsToFloat(uses[2u * u + 1u]) * y[uses[2u * u] * pc.hidden + c];
    o[t * pc.hidden + c] = acc;
}
