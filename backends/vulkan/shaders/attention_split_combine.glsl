// attention_split_combine.comp's merge of one (query head, query)'s blocks, shared with
// the first pass's fused variants (attention_split*_fused, MST_VULKAN_ATTENTION_COMBINE_FUSION),
// whose last workgroup of a (head, query) to finish its block merges them: one arithmetic
// in one order, so the output is the two dispatches' bit for bit. The includer declares
// `partials` (float, [n_tokens][n_heads][n_blocks][2 + v_dim]), `sinks` and `o` (float)
// buffers and the push constants `pc`. With M the largest block maximum (and the sink's
// logit, a key with no value), each block's sum and values are rescaled by exp(m_b - M):
// out = sum_b exp(m_b - M) acc_b / (sum_b exp(m_b - M) l_b + exp(sink - M)).

#extension GL_EXT_control_flow_attributes : require

// Latency: the blocks' partials are a few scattered floats each (coherent in the fused
// variants, so every read goes to L2), and a loop that reads one block's and then uses it
// waits one round trip per block. Here the loads are issued together and then used in the
// original order (the same operations, so the same bits): the invocations fetch the
// blocks' (m, l) into shared memory at once, SPLIT_CHUNK blocks at a time, and each
// invocation's values come SPLIT_BATCH blocks at a time, loaded a batch ahead of their
// sums (the first batch with the (m, l) fetch).
#define SPLIT_CHUNK 256  // blocks held at once: a context of 8192 keys in one pass
#define SPLIT_BATCH 8    // blocks of one value dim loaded together
shared float split_m[SPLIT_CHUNK];
shared float split_l[SPLIT_CHUNK];

// Fetches blocks [b0, b0 + n) into split_m and split_l. Called by the whole workgroup.
void split_fetch(uint base, uint stride, uint b0, uint n, uint tid, uint n_threads) {
    barrier();  // the previous chunk was read
    for (uint i = tid; i < n; i += n_threads) {
        split_m[i] = partials[base + (b0 + i) * stride];
        split_l[i] = partials[base + (b0 + i) * stride + 1u];
    }
    barrier();
}

// Blocks [b0, b0 + SPLIT_BATCH)'s m and value d (past `used`: the last block's, unused).
void split_values(out float mb[SPLIT_BATCH], out float vb[SPLIT_BATCH], uint base, uint stride, uint b0, uint used,
                  uint d) {
    [[unroll]] for (uint i = 0; i < SPLIT_BATCH; ++i) {
        const uint b = min(b0 + i, used - 1u);
        mb[i] = partials[base + b * stride];
        vb[i] = partials[base + b * stride + 2u + d];
    }
}

// The merge in one round trip (MST_VULKAN_SPLIT_MERGE_ONESHOT; an includer that defines
// SPLIT_ONESHOT_ID takes it as that specialization constant, the others never): up to
// SPLIT_ONESHOT_MAX blocks, each invocation loads every block's m, l and its value dim at
// once, all issued before any is used, and finds M and the sum itself, with no shared
// memory and no barrier, where the loop below waits for the (m, l) fetch, its two
// barriers and then a round trip per SPLIT_BATCH blocks of values. The same operations in
// the same order (max is exact in any order; the sum and the values go block by block,
// each block's weight exp(m_b - M) the same value), so the same bits.
#define SPLIT_ONESHOT_MAX 32  // a context of 1024 keys in blocks of 32
#ifdef SPLIT_ONESHOT_ID
layout(constant_id = SPLIT_ONESHOT_ID) const bool SPLIT_ONESHOT = false;
#else
const bool SPLIT_ONESHOT = false;
#endif

void split_combine_oneshot(uint h, uint t, uint used, uint tid, uint n_threads) {
    const uint stride = pc.v_dim + 2u;
    const uint base = (t * pc.n_heads + h) * pc.n_blocks * stride;
    float w[SPLIT_ONESHOT_MAX], lb[SPLIT_ONESHOT_MAX], vb[SPLIT_ONESHOT_MAX];
    [[unroll]] for (uint i = 0; i < SPLIT_ONESHOT_MAX; ++i) {
        const bool in_use = i < used;
        w[i] = in_use ? partials[base + i * stride] : 0.0;
        lb[i] = in_use ? partials[base + i * stride + 1u] : 0.0;
        vb[i] = in_use && tid < pc.v_dim ? partials[base + i * stride + 2u + tid] : 0.0;
    }
    float big = pc.has_sinks != 0u ? sinks[h] : -1.0 / 0.0;
    [[unroll]] for (uint i = 0; i < SPLIT_ONESHOT_MAX; ++i)
        if (i < used) big = max(big, w[i]);
    float l = pc.has_sinks != 0u ? exp(sinks[h] - big) : 0.0;
    [[unroll]] for (uint i = 0; i < SPLIT_ONESHOT_MAX; ++i) {
        w[i] = exp(w[i] - big);
        if (i < used) l += lb[i] * w[i];
    }
    const float inv = 1.0 / l;
    const uint obase = (t * pc.n_heads + h) * pc.v_dim;
    for (uint d = tid; d < pc.v_dim; d += n_threads) {
        if (d != tid)  // the first dim's values came with the m and l
            [[unroll]] for (uint i = 0; i < SPLIT_ONESHOT_MAX; ++i)
                vb[i] = i < used ? partials[base + i * stride + 2u + d] : 0.0;
        float acc = 0.0;
        [[unroll]] for (uint i = 0; i < SPLIT_ONESHOT_MAX; ++i)
            if (i < used) acc += w[i] * vb[i];
        o[obase + d] = acc * inv;
    }
}

// `used`: the blocks query t's keys fill (the ones written); invocation tid of n_threads,
// the calling workgroup's every invocation (its barriers).
void split_combine(uint h, uint t, uint used, uint tid, uint n_threads) {
    if (SPLIT_ONESHOT && used <= SPLIT_ONESHOT_MAX) {  // uniform
        split_combine_oneshot(h, t, used, tid, n_threads);
        return;
    }
    const uint stride = pc.v_dim + 2u;
    const uint base = (t * pc.n_heads + h) * pc.n_blocks * stride;

    // The values' first batch, loaded now: their round trip overlaps the (m, l) fetch's.
    float mb[SPLIT_BATCH], vb[SPLIT_BATCH];
    if (tid < pc.v_dim) split_values(mb, vb, base, stride, 0u, used, tid);

    // Every block holds at least one key, so M is finite and no weight is NaN.
    float big = pc.has_sinks != 0u ? sinks[h] : -1.0 / 0.0;
    for (uint b0 = 0; b0 < used; b0 += SPLIT_CHUNK) {
        const uint n = min(uint(SPLIT_CHUNK), used - b0);
        split_fetch(base, stride, b0, n, tid, n_threads);
        for (uint i = 0; i < n; ++i) big = max(big, split_m[i]);
    }
    // The last chunk fetched is still there: with one chunk, the first one.
    float l = pc.has_sinks != 0u ? exp(sinks[h] - big) : 0.0;
    for (uint b0 = 0; b0 < used; b0 += SPLIT_CHUNK) {
        const uint n = min(uint(SPLIT_CHUNK), used - b0);
        if (used > SPLIT_CHUNK) split_fetch(base, stride, b0, n, tid, n_threads);  // uniform
        for (uint i = 0; i < n; ++i) l += split_l[i] * exp(split_m[i] - big);
    }
    const float inv = 1.0 / l;

    const uint obase = (t * pc.n_heads + h) * pc.v_dim;
    for (uint d = tid; d < pc.v_dim; d += n_threads) {
        float acc = 0.0;
        for (uint b0 = 0; b0 < used; b0 += SPLIT_BATCH) {
            // This batch's loads are in flight; the next one's (of this dim, else of the
            // next) are issued before this one is summed.
            const float mc[SPLIT_BATCH] = mb, vc[SPLIT_BATCH] = vb;
            const bool more = b0 + SPLIT_BATCH < used;
            if (more || d + n_threads < pc.v_dim)
                split_values(mb, vb, base, stride, more ? b0 + SPLIT_BATCH : 0u, used, more ? d : d + n_threads);
            [[unroll]] for (uint i = 0; i < SPLIT_BATCH; ++i)
                if (b0 + i < used) acc += exp(mc[i] - big) * vc[i];
        }
        o[obase + d] = acc * inv;
    }
}

#ifdef FUSED
// The first pass's fused ending (the includer also declares the `counter` buffer, a count
// per (query, head) that is 0 between dispatches): once this workgroup's block of query t
// is written (and made visible before the count), one invocation counts it done; the
// workgroup that brings the count to `used`, the query's blocks that hold keys (the others
// return before writing or counting), sees every block and merges them, then sets the
// count back to 0 for the next dispatch. One dispatch and its barrier level less.
shared bool split_last;

void split_combine_when_last(uint h, uint t, uint used, uint tid, uint n_threads) {
    const uint c = t * pc.n_heads + h;
    memoryBarrierBuffer();
    barrier();
    if (tid == 0u) split_last = atomicAdd(counter[c], 1u) == used - 1u;
    barrier();
    if (!split_last) return;  // uniform over the workgroup
    memoryBarrierBuffer();
    split_combine(h, t, used, tid, n_threads);
    if (tid == 0u) counter[c] = 0u;
}
#endif
