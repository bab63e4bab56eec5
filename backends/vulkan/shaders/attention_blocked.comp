#version 450
// Causal softmax attention for a prefill: a workgroup takes one query head and a block of
// BQ queries, and walks the keys they see in blocks of BKV staged in shared memory, with
// an online softmax (a running maximum and sum per query, the output rescaled as the
// maximum grows). Each key and value row is read once per BQ queries instead of once per
// query (attention.comp), and no score leaves the workgroup. Same push constants and
// bindings as attention.comp (GQA, sliding windows, sinks; the scratch binding unused);
// head_dim and v_dim at most 128.
// BKV, the keys a block, is specialization constant 0 (op_attention_prefill.cpp): 32 where
// the device gives a workgroup the 43328 bytes of shared memory that takes, else 16 (25792
// bytes; Vulkan guarantees 16384, lavapipe and many mobile GPUs give 32768).
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint BKV = 32;

#define BQ 16
#define DMAX 128
#define PITCH (DMAX + 1)  // rows padded so that lanes reading one column hit different banks

layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };
layout(std430, binding = 3) writeonly buffer O { float o[]; };
layout(std430, binding = 5) readonly buffer Sinks { float sinks[]; };

layout(push_constant) uniform Push {
    uint n_tokens, n_heads, group, head_dim, v_dim, pos0;
    uint k_head, v_head;
    uint k_row, v_row;
    float scale;
    uint window, has_sinks, n_ctx;
} pc;

shared float qs[BQ * PITCH];
shared float ks[BKV * PITCH];
shared float vs[BKV * PITCH];
shared float ps[BQ * BKV];  // scores, then probabilities, of the block

// First key position query position `pos` sees.
uint first_key(uint pos) { return pc.window > 0u && pos + 1u > pc.window ? pos + 1u - pc.window : 0u; }

void main() {
    const uint h = gl_WorkGroupID.x, t0 = gl_WorkGroupID.y * BQ, tid = gl_LocalInvocationID.x;
    const uint kv = h / pc.group;
    const uint nq = min(uint(BQ), pc.n_tokens - t0);
    // Thread layout: query i = tid / 8 of the block, lane part = tid % 8; the lane takes
    // keys part + 8u of a block for scores and output dimensions part + 8u for sums.
    const uint i = tid >> 3, part = tid & 7u;
    const uint qpos = pc.pos0 + t0 + i;
    const bool live = i < nq;

    for (uint e = tid; e < BQ * DMAX; e += 128u) {
        const uint qi = e / DMAX, d = e % DMAX;
        float x = 0.0;
        if (qi < nq && d < pc.head_dim) x = q[((t0 + qi) * pc.n_heads + h) * pc.head_dim + d];
        qs[qi * PITCH + d] = x;
    }
    // A sink is a key with no value: start the softmax from it.
    float m = -1.0 / 0.0;
    if (pc.has_sinks != 0u) m = sinks[h];
    float l = pc.has_sinks != 0u ? 1.0 : 0.0;
    float acc[DMAX / 8];
    for (uint u = 0; u < DMAX / 8u; ++u) acc[u] = 0.0;

    const uint lo = first_key(pc.pos0 + t0), hi = pc.pos0 + t0 + nq;  // keys [lo, hi) of the block
    for (uint k0 = lo; k0 < hi; k0 += BKV) {
        barrier();  // the previous block's rows are no longer read
        for (uint e = tid; e < BKV * DMAX; e += 128u) {
            const uint j = e / DMAX, d = e % DMAX, pos = k0 + j;
            const bool inside = pos < hi;
            float kx = 0.0, vx = 0.0;
            if (inside && d < pc.head_dim) kx = k[kv * pc.k_head + pos * pc.k_row + d];
            if (inside && d < pc.v_dim) vx = v[kv * pc.v_head + pos * pc.v_row + d];
            ks[j * PITCH + d] = kx;
            vs[j * PITCH + d] = vx;
        }
        barrier();
        const uint qfirst = first_key(qpos);
        for (uint u = 0; u < BKV / 8u; ++u) {
            const uint j = part + 8u * u, pos = k0 + j;
            float s = -1.0 / 0.0;
            if (live && pos <= qpos && pos >= qfirst) {
                s = 0.0;
                for (uint d = 0; d < pc.head_dim; ++d) s += qs[i * PITCH + d] * ks[j * PITCH + d];
                s *= pc.scale;
            }
            ps[i * BKV + j] = s;
        }
        barrier();
        float m_new = m;
        for (uint j = 0; j < BKV; ++j) m_new = max(m_new, ps[i * BKV + j]);
        barrier();  // every lane of the row has its maximum before the scores are replaced
        // A row with no key seen yet keeps m = -inf; its probabilities are 0, not NaN.
        const bool any = m_new > -1.0 / 0.0;
        const float alpha = any ? exp(m - m_new) : 1.0;
        for (uint u = 0; u < BKV / 8u; ++u) {
            const uint j = part + 8u * u;
            ps[i * BKV + j] = any ? exp(ps[i * BKV + j] - m_new) : 0.0;
        }
        barrier();
        float sum = 0.0;
        for (uint u = 0; u < DMAX / 8u; ++u) acc[u] *= alpha;
        for (uint j = 0; j < BKV; ++j) {
            const float p = ps[i * BKV + j];
            sum += p;
            for (uint u = 0; u < DMAX / 8u; ++u) acc[u] += p * vs[j * PITCH + part + 8u * u];
        }
        l = l * alpha + sum;
        m = m_new;
    }
    if (!live) return;
    const float inv = 1.0 / l;
    const uint obase = ((t0 + i) * pc.n_heads + h) * pc.v_dim;
    for (uint u = 0; u < DMAX / 8u; ++u) {
        const uint d = part + 8u * u;
        if (d < pc.v_dim) o[obase + d] = acc[u] * inv;
    }
}
