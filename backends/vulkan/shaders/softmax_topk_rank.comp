#version 450
// Softmax top-k routing by rank (router/softmax_topk.h's contract; MST_VULKAN_MOE_FUSION,
// docs/gpu_decode_kernels.md "The MoE half of a layer in fewer dispatches"): for token t,
// p = softmax of its logits, the k largest p (ties to the lower id, as the CPU's
// partial_sort and torch.topk), their ids and p, or p / sum of the kept p when
// renormalising. One workgroup per token.
// softmax_topk.comp picks the k experts in k passes over every expert, each ending in a
// six-barrier tree (14.5 us for 128 experts on an H100); here every lane ranks its own
// experts at once: expert e's rank is the number of experts before it in (p descending,
// id ascending), a total order, so the experts of rank < k are the top k and each writes
// its own slot, with one barrier after the probabilities are in shared memory.
// Same bits as softmax_topk.comp: the maximum, the sum (the same lanes' partials and the
// same tree) and each p are computed as there, and the kept sum adds the chosen p in rank
// order. An expert whose p is NaN ranks nowhere (as there: it is never picked); slots no
// expert fills keep id -1 and weight -1, which routed_swiglu_by_id reports as a miss.
// 128 lanes: the maximum and the sum take the first 64 (softmax_topk.comp's lanes and tree,
// for the same bits), the ranking all of them (one expert each for 128 experts).
layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer Logits { float logits[]; };
layout(std430, binding = 1) buffer Ids { int ids[]; };
layout(std430, binding = 2) buffer Weights { float weights[]; };

layout(push_constant) uniform Push { uint n_tokens, n_experts, k, renormalize; } pc;

// Probabilities of the first CACHED experts in shared memory; further ones are computed
// again where needed (the same expression, so the same bits).
const uint CACHED = 1024u;
shared float s_val[64];
shared float s_p[CACHED];

uint row;
float top, sum;

float prob(uint e) { return e < CACHED ? s_p[e] : exp(logits[row + e] - top) / sum; }

void main() {
    const uint t = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (t >= pc.n_tokens) return;  // uniform over the workgroup
    const uint lane = gl_LocalInvocationID.x, E = pc.n_experts, first = t * pc.k;
    row = t * E;

    const bool tree = lane < 64u;  // a lane of the maximum's and the sum's tree
    top = -1.0 / 0.0;
    if (tree) {
        for (uint e = lane; e < E; e += 64u) top = max(top, logits[row + e]);
        s_val[lane] = top;
    }
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (lane < s) s_val[lane] = max(s_val[lane], s_val[lane + s]);
        barrier();
    }
    top = s_val[0];
    barrier();
    if (tree) {
        float part = 0.0;
        for (uint e = lane; e < E; e += 64u) part += exp(logits[row + e] - top);
        s_val[lane] = part;
    }
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (lane < s) s_val[lane] += s_val[lane + s];
        barrier();
    }
    sum = s_val[0];
    for (uint e = lane; e < min(E, CACHED); e += 128u) s_p[e] = exp(logits[row + e] - top) / sum;
    // Unfilled slots (NaN probabilities only) say so; the rank writes below come after.
    for (uint i = lane; i < pc.k; i += 128u) {
        ids[first + i] = -1;
        weights[first + i] = -1.0;
    }
    memoryBarrierBuffer();
    barrier();

    for (uint e = lane; e < E; e += 128u) {
        const float p = prob(e);
        uint rank = 0u;
        for (uint q = 0u; q < E && rank < pc.k; ++q) {
            const float pq = prob(q);
            if (pq > p || (pq == p && q < e)) ++rank;
        }
        if (rank < pc.k && !isnan(p)) {
            ids[first + rank] = int(e);
            weights[first + rank] = p;
        }
    }
    if (pc.renormalize == 0u) return;
    memoryBarrierBuffer();
    barrier();
    if (lane == 0u) {
        float kept = 0.0;
        for (uint i = 0u; i < pc.k; ++i) kept += weights[first + i];
        for (uint i = 0u; i < pc.k; ++i) weights[first + i] /= kept;
    }
}
