#version 450
// Causal softmax attention, one workgroup per (query head, token): Backend::attention
// (GQA, sliding window, sinks) and Backend::latent_attention (every head reads the same
// rows; the value is the leading v_dim values of the key row) are this one shader with
// different strides. Three passes over the keys the query sees: scores (one key per
// invocation, kept in a scratch buffer), their exponentials and sum, then each
// invocation owns value dimensions and sums over the keys.
layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };
layout(std430, binding = 3) writeonly buffer O { float o[]; };
layout(std430, binding = 4) coherent buffer S { float scores[]; };  // [n_tokens][n_heads][n_ctx]
layout(std430, binding = 5) readonly buffer Sinks { float sinks[]; };

layout(push_constant) uniform Push {
    uint n_tokens, n_heads, group, head_dim, v_dim, pos0;
    uint k_head, v_head; // elements between kv heads in k and in v
    uint k_row, v_row;   // elements between positions
    float scale;
    uint window, has_sinks, n_ctx;
} pc;

shared float qs[1024];
shared float red[128];

float reduce_max(float m) {
    const uint tid = gl_LocalInvocationID.x;
    red[tid] = m;
    barrier();
    for (uint s = 64u; s > 0u; s >>= 1) {
        if (tid < s) red[tid] = max(red[tid], red[tid + s]);
        barrier();
    }
    const float r = red[0];
    barrier();
    return r;
}

float reduce_sum(float m) {
    const uint tid = gl_LocalInvocationID.x;
    red[tid] = m;
    barrier();
    for (uint s = 64u; s > 0u; s >>= 1) {
        if (tid < s) red[tid] += red[tid + s];
        barrier();
    }
    const float r = red[0];
    barrier();
    return r;
}

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    const uint kv = h / pc.group;
    const uint pos = pc.pos0 + t;
    const uint first = pc.window > 0u && pos + 1u > pc.window ? pos + 1u - pc.window : 0u;
    const uint n_keys = pos - first + 1u;
    const uint qbase = (t * pc.n_heads + h) * pc.head_dim;
    for (uint d = tid; d < pc.head_dim; d += 128u) qs[d] = q[qbase + d];
    barrier();

    const uint sbase = (t * pc.n_heads + h) * pc.n_ctx;
    const uint kbase = kv * pc.k_head;
    float m = -1.0 / 0.0;
    for (uint j = tid; j < n_keys; j += 128u) {
        const uint kr = kbase + (first + j) * pc.k_row;
        float s = 0.0;
        for (uint d = 0; d < pc.head_dim; ++d) s += qs[d] * k[kr + d];
        s *= pc.scale;
        scores[sbase + j] = s;
        m = max(m, s);
    }
    m = reduce_max(m);
    const float sink = pc.has_sinks != 0u ? sinks[h] : 0.0;
    if (pc.has_sinks != 0u) m = max(m, sink);
    float l = 0.0;
    for (uint j = tid; j < n_keys; j += 128u) {
        const float p = exp(scores[sbase + j] - m);
        scores[sbase + j] = p;
        l += p;
    }
    l = reduce_sum(l);
    if (pc.has_sinks != 0u) l += exp(sink - m);
    memoryBarrierBuffer();
    barrier();
    const float inv = 1.0 / l;
    const uint vbase = kv * pc.v_head + first * pc.v_row;
    const uint obase = (t * pc.n_heads + h) * pc.v_dim;
    for (uint d = tid; d < pc.v_dim; d += 128u) {
        float acc = 0.0;
        for (uint j = 0; j < n_keys; ++j) acc += scores[sbase + j] * v[vbase + j * pc.v_row + d];
        o[obase + d] = acc * inv;
    }
}
