#version 450
// The gated delta rule, every token of the batch in one dispatch. An invocation owns one
// column j of one value head's state S [k_dim][v_dim] (columns evolve independently) and
// keeps it in the state buffer, which the host fills with state_in (or zeros) first:
//   r = S^T k;  delta = beta (v - decay r);  S = decay S + k delta^T;  out = scale S^T q
// The token's q and k are shared by the workgroup through shared memory.
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };
layout(std430, binding = 3) readonly buffer G { float g[]; };
layout(std430, binding = 4) readonly buffer Beta { float beta[]; };
layout(std430, binding = 5) buffer State { float s[]; };   // [n_heads][k_dim][v_dim]
layout(std430, binding = 6) writeonly buffer Out { float o[]; };

layout(push_constant) uniform Push { uint n_tokens, n_heads, n_k_heads, k_dim, v_dim; float scale; } pc;

shared float ks[512];
shared float qs[512];

void main() {
    const uint j = gl_GlobalInvocationID.x, head = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    const uint k_head = head / (pc.n_heads / pc.n_k_heads);
    const uint sbase = head * pc.k_dim * pc.v_dim;
    const bool in_range = j < pc.v_dim;
    for (uint t = 0; t < pc.n_tokens; ++t) {
        barrier();
        const uint kb = (t * pc.n_k_heads + k_head) * pc.k_dim;
        for (uint i = tid; i < pc.k_dim; i += 64u) {
            ks[i] = k[kb + i];
            qs[i] = q[kb + i];
        }
        barrier();
        if (!in_range) continue;
        const float decay = exp(g[t * pc.n_heads + head]), b = beta[t * pc.n_heads + head];
        float r = 0.0;
        for (uint i = 0; i < pc.k_dim; ++i) r += ks[i] * s[sbase + i * pc.v_dim + j];
        const float delta = b * (v[(t * pc.n_heads + head) * pc.v_dim + j] - decay * r);
        float acc = 0.0;
        for (uint i = 0; i < pc.k_dim; ++i) {
            const float updated = decay * s[sbase + i * pc.v_dim + j] + ks[i] * delta;
            s[sbase + i * pc.v_dim + j] = updated;
            acc += qs[i] * updated;
        }
        o[(t * pc.n_heads + head) * pc.v_dim + j] = pc.scale * acc;
    }
}
