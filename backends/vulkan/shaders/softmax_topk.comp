#version 450
// Softmax top-k routing (router/softmax_topk.h's contract): for token t, p = softmax of
// its logits, the k largest p (ties to the lower id, as torch.topk), their ids and p, or
// p / sum of the kept p when renormalising. One invocation per token: a decode step
// routes one token over a few hundred experts, too little to share out, and walking the
// experts in order keeps the sum in the host's order. The i-th pass takes the best
// expert that ranks after the (i-1)-th in (p descending, id ascending), so no list of
// taken experts is needed whatever E is.
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Logits { float logits[]; };
layout(std430, binding = 1) writeonly buffer Ids { int ids[]; };
layout(std430, binding = 2) buffer Weights { float weights[]; };

layout(push_constant) uniform Push { uint n_tokens, n_experts, k, renormalize; } pc;

void main() {
    const uint t = gl_GlobalInvocationID.x;
    if (t >= pc.n_tokens) return;
    const uint row = t * pc.n_experts, first = t * pc.k;
    float top = logits[row];
    for (uint e = 1u; e < pc.n_experts; ++e) top = max(top, logits[row + e]);
    float sum = 0.0;
    for (uint e = 0u; e < pc.n_experts; ++e) sum += exp(logits[row + e] - top);

    float prev_p = 2.0;  // above every probability: the first pass may take any expert
    int prev_id = -1;
    float kept = 0.0;
    for (uint i = 0u; i < pc.k; ++i) {
        float best_p = -1.0;
        int best = -1;
        for (uint e = 0u; e < pc.n_experts; ++e) {
            const float p = exp(logits[row + e] - top) / sum;
            const bool after_prev = p < prev_p || (p == prev_p && int(e) > prev_id);
            if (after_prev && p > best_p) {  // strict: an equal p keeps the lower id
                best_p = p;
                best = int(e);
            }
        }
        ids[first + i] = best;
        weights[first + i] = best_p;
        kept += best_p;
        prev_p = best_p;
        prev_id = best;
    }
    if (pc.renormalize != 0u)
        for (uint i = 0u; i < pc.k; ++i) weights[first + i] /= kept;
}
