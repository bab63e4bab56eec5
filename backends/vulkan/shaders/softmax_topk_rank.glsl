// softmax_topk_rank.comp's body, shared with matvec_fused.comp's router variant
// (matvec_norm_topk_*: the router product's last workgroup ranks the experts), so that both
// compute the same bits the same way. The includer declares `ids` (int) and `weights`
// (float) buffers, defines TOPK_LOGITS as the float array holding the logits, and runs
// 128 invocations; softmax_topk_rank.comp says how the ranking works.
// The first CACHED experts: the tree lane that owns expert e (e mod 64) loads its logit and
// computes its exp and p in registers, then writes p to shared memory for every lane's rank;
// further ones are read and computed again where needed (the same expressions, the same
// bits). The chosen ids and p go to shared memory by rank (k <= CACHED) and out once at the
// end, so no memory fence orders the unfilled slots' -1 before the rank's writes.
#extension GL_EXT_control_flow_attributes : require
const uint CACHED = 1024u;
shared float s_max[64], s_sum[64];
shared float s_p[CACHED];
shared float s_kept[CACHED];  // the chosen p by rank (k <= CACHED)
shared int s_ids[CACHED];     // the chosen ids by rank (k <= CACHED)

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
// Latency: one memory round trip for the logits (coherent in matvec_fused.comp: L2), issued
// together, and four barriers (the maximum's partials, the sum's, the p, the ranks).
void softmax_topk_rank(uint t, uint lane, uint E, uint K, bool renormalize) {
    const uint first = t * K;
    const uint n_cached = min(E, CACHED);
    topk_row = t * E;
    const bool tree = lane < 64u;  // a lane of the maximum's and the sum's tree
    const bool in_shared = K <= CACHED;

    // Tree lane l's experts are l, l + 64, ...: its cached ones (up to 16) in c, their
    // loads in flight together; the maximum over them in that order, then the uncached.
    float c[CACHED / 64u];
    if (tree) {
        [[unroll]] for (uint j = 0u; j < CACHED / 64u; ++j) {
            const uint e = lane + 64u * j;
            c[j] = e < n_cached ? TOPK_LOGITS[topk_row + e] : 0.0;
        }
        float m = -1.0 / 0.0;
        [[unroll]] for (uint j = 0u; j < CACHED / 64u; ++j)
            if (lane + 64u * j < n_cached) m = max(m, c[j]);
        for (uint e = CACHED + lane; e < E; e += 64u) m = max(m, TOPK_LOGITS[topk_row + e]);
        s_max[lane] = m;
    }
    // Unfilled slots (NaN probabilities only) say so; the rank writes below come after.
    for (uint i = lane; i < K; i += 128u)
        if (in_shared) {
            s_ids[i] = -1;
            s_kept[i] = -1.0;
        } else {
            ids[first + i] = -1;
            weights[first + i] = -1.0;
        }
    barrier();
    topk_top = tree_max();
    if (tree) {
        float part = 0.0;
        [[unroll]] for (uint j = 0u; j < CACHED / 64u; ++j)
            if (lane + 64u * j < n_cached) {
                c[j] = exp(c[j] - topk_top);
                part += c[j];
            }
        for (uint e = CACHED + lane; e < E; e += 64u) part += exp(TOPK_LOGITS[topk_row + e] - topk_top);
        s_sum[lane] = part;
    }
    barrier();
    topk_sum = tree_sum();
    if (tree)
        [[unroll]] for (uint j = 0u; j < CACHED / 64u; ++j)
            if (lane + 64u * j < n_cached) s_p[lane + 64u * j] = c[j] / topk_sum;
    if (!in_shared) memoryBarrierBuffer();  // the -1 in memory before the rank's writes
    barrier();

    for (uint e = lane; e < E; e += 128u) {
        const float p = prob(e);
        uint rank = 0u;
        uint q = 0u;
        // 32 experts a step from shared memory, their loads independent of the count (it is
        // checked against K a step at a time: a count past K ranks nowhere either way), then
        // four a step, then the rest one at a time.
        for (; q + 32u <= n_cached && rank < K; q += 32u)
            [[unroll]] for (uint i = 0u; i < 32u; i += 4u) {
                const uint b = q + i;
                const vec4 pq = vec4(s_p[b], s_p[b + 1u], s_p[b + 2u], s_p[b + 3u]);
                rank += uint(pq.x > p || (pq.x == p && b < e)) + uint(pq.y > p || (pq.y == p && b + 1u < e)) +
                        uint(pq.z > p || (pq.z == p && b + 2u < e)) + uint(pq.w > p || (pq.w == p && b + 3u < e));
            }
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
            if (in_shared) {
                s_ids[rank] = int(e);
                s_kept[rank] = p;
            } else {
                ids[first + rank] = int(e);
                weights[first + rank] = p;
            }
        }
    }
    if (in_shared) {
        barrier();
        // Every lane adds the kept p in rank order (the same sum) and writes its own slots.
        float kept = 0.0;
        if (renormalize)
            for (uint i = 0u; i < K; ++i) kept += s_kept[i];
        for (uint i = lane; i < K; i += 128u) {
            ids[first + i] = s_ids[i];
            weights[first + i] = renormalize ? s_kept[i] / kept : s_kept[i];
        }
        return;
    }
    if (!renormalize) return;
    memoryBarrierBuffer();
    barrier();
    if (lane == 0u) {
        float kept = 0.0;
        for (uint i = 0u; i < K; ++i) kept += weights[first + i];
        for (uint i = 0u; i < K; ++i) weights[first + i] /= kept;
    }
}
