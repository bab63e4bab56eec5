// softmax_topk_rank.comp's body, shared with matvec_fused.comp's router variant
// (matvec_norm_topk_*: the router product's last workgroup ranks the experts), so that both
// compute the same bits the same way. The includer declares `ids` (int) and `weights`
// (float) buffers, defines TOPK_LOGITS as the float array holding the logits, and runs
// 128 invocations; softmax_topk_rank.comp says how the ranking works.
// The first CACHED experts in shared memory: their logit, then in place their exp, then their
// p; further ones are read and computed again where needed (the same expressions, the same
// bits).
#extension GL_EXT_control_flow_attributes : require
const uint CACHED = 1024u;
shared float s_max[64], s_sum[64];
shared float s_p[CACHED];
shared float s_kept[CACHED];  // the chosen p by rank (renormalising, k <= CACHED)

uint topk_row;
float topk_top, topk_sum;

float prob(uint e) { return e < CACHED ? s_p[e] : exp(TOPK_LOGITS[topk_row + e] - topk_top) / topk_sum; }

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

// Token t's top k of E experts by lane `lane` of 128 (the whole workgroup calls it).
void softmax_topk_rank(uint t, uint lane, uint E, uint K, bool renormalize) {
    const uint first = t * K;
    const uint n_cached = min(E, CACHED);
    topk_row = t * E;

    // Lane l's experts in the trees are l, l + 64, ...: the logits those lanes read (all 128
    // lanes load them, 64 lanes use them). Latency: a lane's logits (up to 8: every cached
    // one at CACHED = 1024) are loaded together, then stored, rather than one round trip
    // to memory (coherent in matvec_fused.comp: L2) after another past 128 experts.
    for (uint e0 = lane; e0 < n_cached; e0 += 8u * 128u) {
        float x[8];
        [[unroll]] for (uint i = 0u; i < 8u; ++i) x[i] = e0 + 128u * i < n_cached ? TOPK_LOGITS[topk_row + e0 + 128u * i] : 0.0;
        [[unroll]] for (uint i = 0u; i < 8u; ++i)
            if (e0 + 128u * i < n_cached) s_p[e0 + 128u * i] = x[i];
    }
    barrier();
    const bool tree = lane < 64u;  // a lane of the maximum's and the sum's tree
    if (tree) {
        float m = -1.0 / 0.0;
        for (uint e = lane; e < E; e += 64u) m = max(m, e < CACHED ? s_p[e] : TOPK_LOGITS[topk_row + e]);
        s_max[lane] = m;
    }
    barrier();
    topk_top = tree_max();
    if (tree) {
        float part = 0.0;
        for (uint e = lane; e < E; e += 64u) {
            const float x = exp((e < CACHED ? s_p[e] : TOPK_LOGITS[topk_row + e]) - topk_top);
            if (e < CACHED) s_p[e] = x;  // only this lane reads or writes expert e until the barrier
            part += x;
        }
        s_sum[lane] = part;
    }
    barrier();
    topk_sum = tree_sum();
    if (tree)
        for (uint e = lane; e < n_cached; e += 64u) s_p[e] /= topk_sum;
    // Unfilled slots (NaN probabilities only) say so; the rank writes below come after.
    const bool keep = renormalize && K <= CACHED;
    for (uint i = lane; i < K; i += 128u) {
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
        for (; q + 4u <= n_cached && rank < K; q += 4u) {
            const vec4 pq = vec4(s_p[q], s_p[q + 1u], s_p[q + 2u], s_p[q + 3u]);
            rank += uint(pq.x > p || (pq.x == p && q < e)) + uint(pq.y > p || (pq.y == p && q + 1u < e)) +
                    uint(pq.z > p || (pq.z == p && q + 2u < e)) + uint(pq.w > p || (pq.w == p && q + 3u < e));
        }
        for (; q < E && rank < K; ++q) {
            const float pq = prob(q);
            if (pq > p || (pq == p && q < e)) ++rank;
        }
        if (rank < K && !isnan(p)) {
            ids[first + rank] = int(e);
            if (keep) s_kept[rank] = p;
            else weights[first + rank] = p;
        }
    }
    if (!renormalize) return;
    if (keep) {
        barrier();
        // Every lane adds the kept p in rank order (the same sum) and divides its own slots.
        float kept = 0.0;
        for (uint i = 0u; i < K; ++i) kept += s_kept[i];
        for (uint i = lane; i < K; i += 128u) weights[first + i] = s_kept[i] / kept;
        return;
    }
    memoryBarrierBuffer();
    barrier();
    if (lane == 0u) {
        float kept = 0.0;
        for (uint i = 0u; i < K; ++i) kept += weights[first + i];
        for (uint i = 0u; i < K; ++i) weights[first + i] /= kept;
    }
}
