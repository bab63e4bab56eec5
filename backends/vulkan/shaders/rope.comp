#version 450
// Rotary embedding in place. cos and sin of every (token, frequency) come from the host,
// computed in double as the CPU backend does: a GPU's float sin/cos of a large angle
// (position x frequency) would drift from the reference.
layout(local_size_x = 64) in;

layout(std430, binding = 0) buffer Xb { float x[]; };
layout(std430, binding = 1) readonly buffer Table { float cs[]; };  // [n_tokens][half][2]: cos, sin

layout(push_constant) uniform Push { uint n_tokens, n_heads, head_dim, half_dim, interleaved; } pc;

void main() {
    const uint i = gl_GlobalInvocationID.x;
    const uint th = gl_WorkGroupID.y + gl_WorkGroupID.z * 65535u;  // token * n_heads + head
    if (i >= pc.half_dim || th >= pc.n_tokens * pc.n_heads) return;
    const uint t = th / pc.n_heads;
    const uint base = th * pc.head_dim;
    const uint a = pc.interleaved != 0u ? base + 2u * i : base + i;
    const uint b = pc.interleaved != 0u ? a + 1u : a + pc.half_dim;
    const float c = cs[(t * pc.half_dim + i) * 2u], s = cs[(t * pc.half_dim + i) * 2u + 1u];
    const float x0 = x[a], x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x1 * c + x0 * s;
}
