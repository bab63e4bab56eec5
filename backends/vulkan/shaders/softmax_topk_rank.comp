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
// Latency, not bytes, is this kernel's time (15 us on the H100 for 128 scores), so: the
// logits are read from memory once, into shared memory, and each exp is computed once; the
// max and sum trees are the same pairwise operations in the same order, but every lane
// computes them itself from the 64 partials in registers (one barrier each instead of a
// barrier a level); the renormalising sum takes the chosen p from shared memory, not back
// from the weights buffer, and every lane divides its own slot.
layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer Logits { float logits[]; };
layout(std430, binding = 1) buffer Ids { int ids[]; };
layout(std430, binding = 2) buffer Weights { float weights[]; };

layout(push_constant) uniform Push { uint n_tokens, n_experts, k, renormalize; } pc;

// The first CACHED experts in shared memory: their logit, then in place their exp, then their
// p; further ones are read and computed again where needed (the same expressions, the same
// bits).
const uint CACHED = 1024u;
shared float s_max[64], s_sum[64];
shared float s_p[CACHED];
shared float s_kept[CACHED];  // the chosen p by rank (renormalising, k <= CACHED)

uint row;
float top, sum;

float prob(uint e) { return e < CACHED ? s_p[e] : exp(logits[row + e] - top) / sum; }

// softmax_topk.comp's tree over 64 partials (s = 32, 16, ..., 1: v[i] op= v[i + s]), in
// registers: the same operations in the same order, so the same bits, without a barrier a level.
float tree_max(void) {
    float v[64];
    for (uint i = 0u; i < 64u; ++i) v[i] = s_max[i];
    for (uint s = 32u; s > 0u; s >>= 1)
        for (uint i = 0u; i < s; ++i) v[i] = max(v[i], v[i + s]);
    return v[0];
}
float tree_sum(void) {
    float v[64];
    for (uint i = 0u; i < 64u; ++i) v[i] = s_sum[i];
    for (uint s = 32u; s > 0u; s >>= 1)
        for (uint i = 0u; i < s; ++i) v[i] += v[i + s];
    return v[0];
}

void main() {
    const uint t = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (t >= pc.n_tokens) return;  // uniform over the workgroup
    const uint lane = gl_LocalInvocationID.x, E = pc.n_experts, first = t * pc.k;
    const uint n_cached = min(E, CACHED);
    row = t * E;

    // Lane l's experts in the trees are l, l + 64, ...: the logits those lanes read (all 128
    // lanes load them, 64 lanes use them).
    for (uint e = lane; e < n_cached; e += 128u) s_p[e] = logits[row + e];
    barrier();
    const bool tree = lane < 64u;  // a lane of the maximum's and the sum's tree
    if (tree) {
        float m = -1.0 / 0.0;
        for (uint e = lane; e < E; e += 64u) m = max(m, e < CACHED ? s_p[e] : logits[row + e]);
        s_max[lane] = m;
    }
    barrier();
    top = tree_max();
    if (tree) {
        float part = 0.0;
        for (uint e = lane; e < E; e += 64u) {
            const float x = exp((e < CACHED ? s_p[e] : logits[row + e]) - top);
            if (e < CACHED) s_p[e] = x;  // only this lane reads or writes expert e until the barrier
            part += x;
        }
        s_sum[lane] = part;
    }
    barrier();
    sum = tree_sum();
    if (tree)
        for (uint e = lane; e < n_cached; e += 64u) s_p[e] /= sum;
    // Unfilled slots (NaN probabilities only) say so; the rank writes below come after.
    const bool keep = pc.renormalize != 0u && pc.k <= CACHED;
    for (uint i = lane; i < pc.k; i += 128u) {
        ids[first + i] = -1;
        if (keep) s_kept[i] = -1.0;
        else weights[first + i] = -1.0;
    }
    memoryBarrierBuffer();
    barrier();

    for (uint e = lane; e < E; e += 128u) {
        const float p = prob(e);
        uint rank = 0u;
        uint q = 0u;
        // Four experts a step from shared memory, their loads in flight together (a count,
        // so the order does not matter), then the rest one at a time.
        for (; q + 4u <= n_cached && rank < pc.k; q += 4u) {
            const vec4 pq = vec4(s_p[q], s_p[q + 1u], s_p[q + 2u], s_p[q + 3u]);
            rank += uint(pq.x > p || (pq.x == p && q < e)) + uint(pq.y > p || (pq.y == p && q + 1u < e)) +
                    uint(pq.z > p || (pq.z == p && q + 2u < e)) + uint(pq.w > p || (pq.w == p && q + 3u < e));
        }
        for (; q < E && rank < pc.k; ++q) {
            const float pq = prob(q);
            if (pq > p || (pq == p && q < e)) ++rank;
        }
        if (rank < pc.k && !isnan(p)) {
            ids[first + rank] = int(e);
            if (keep) s_kept[rank] = p;
            else weights[first + rank] = p;
        }
    }
    if (pc.renormalize == 0u) return;
    if (keep) {
        barrier();
        // Every lane adds the kept p in rank order (the same sum) and divides its own slots.
        float kept = 0.0;
        for (uint i = 0u; i < pc.k; ++i) kept += s_kept[i];
        for (uint i = lane; i < pc.k; i += 128u) weights[first + i] = s_kept[i] / kept;
        return;
    }
    memoryBarrierBuffer();
    barrier();
    if (lane == 0u) {
        float kept = 0.0;
        for (uint i = 0u; i < pc.k; ++i) kept += weights[first + i];
        for (uint i = 0u; i < pc.k; ++i) weights[first + i] /= kept;
    }
}
