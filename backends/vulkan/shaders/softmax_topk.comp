#version 450
// Softmax top-k routing (router/softmax_topk.h's contract): for token t, p = softmax of
// its logits, the k largest p (ties to the lower id, as torch.topk), their ids and p, or
// p / sum of the kept p when renormalising. One workgroup per token: a single invocation
// walking k x E probabilities took 42 us per decode layer on an H100 (bench_vulkan
// --profile), more than the layer's attention; 64 lanes share the experts out and reduce
// through shared memory. The i-th pass takes the best expert that ranks after the
// (i-1)-th in (p descending, id ascending), so no list of taken experts is needed
// whatever E is. The sum is a tree over the lanes, not the host's sequential order: the
// ranking does not depend on it (every p is divided by the same sum), the weights move by
// an ulp or so.
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Logits { float logits[]; };
layout(std430, binding = 1) writeonly buffer Ids { int ids[]; };
layout(std430, binding = 2) buffer Weights { float weights[]; };

layout(push_constant) uniform Push { uint n_tokens, n_experts, k, renormalize; } pc;

shared float s_val[64];
shared int s_id[64];

// Whether (p, id) ranks before (q, jd): higher probability, then lower id; id -1 is nothing.
bool before(float p, int id, float q, int jd) {
    if (id < 0) return false;
    if (jd < 0) return true;
    return p > q || (p == q && id < jd);
}

void main() {
    const uint t = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (t >= pc.n_tokens) return;  // uniform over the workgroup
    const uint lane = gl_LocalInvocationID.x;
    const uint row = t * pc.n_experts, first = t * pc.k;

    float top = -1.0 / 0.0;
    for (uint e = lane; e < pc.n_experts; e += 64u) top = max(top, logits[row + e]);
    s_val[lane] = top;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (lane < s) s_val[lane] = max(s_val[lane], s_val[lane + s]);
        barrier();
    }
    top = s_val[0];
    barrier();
    float part = 0.0;
    for (uint e = lane; e < pc.n_experts; e += 64u) part += exp(logits[row + e] - top);
    s_val[lane] = part;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (lane < s) s_val[lane] += s_val[lane + s];
        barrier();
    }
    const float sum = s_val[0];
    barrier();

    float prev_p = 2.0;  // above every probability: the first pass may take any expert
    int prev_id = -1;
    float kept = 0.0;
    for (uint i = 0u; i < pc.k; ++i) {
        float best_p = -1.0;
        int best = -1;
        for (uint e = lane; e < pc.n_experts; e += 64u) {
            const float p = exp(logits[row + e] - top) / sum;
            const bool after_prev = p < prev_p || (p == prev_p && int(e) > prev_id);
            if (after_prev && p > best_p) {  // strict: an equal p keeps the lower id (e ascends)
                best_p = p;
                best = int(e);
            }
        }
        s_val[lane] = best_p;
        s_id[lane] = best;
        barrier();
        for (uint s = 32u; s > 0u; s >>= 1) {
            if (lane < s && before(s_val[lane + s], s_id[lane + s], s_val[lane], s_id[lane])) {
                s_val[lane] = s_val[lane + s];
                s_id[lane] = s_id[lane + s];
            }
            barrier();
        }
        best_p = s_val[0];
        best = s_id[0];
        barrier();
        if (lane == 0u) {
            ids[first + i] = best;
            weights[first + i] = best_p;
        }
        kept += best_p;
        prev_p = best_p;
        prev_id = best;
    }
    if (pc.renormalize != 0u && lane == 0u)
        for (uint i = 0u; i < pc.k; ++i) weights[first + i] /= kept;
}
