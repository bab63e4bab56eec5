// attention_split_combine.comp's merge of one (query head, query)'s blocks, shared with
// the first pass's fused variants (attention_split*_fused, MST_VULKAN_ATTENTION_COMBINE_FUSION),
// whose last workgroup of a (head, query) to finish its block merges them: one arithmetic
// in one order, so the output is the two dispatches' bit for bit. The includer declares
// `partials` (float, [n_tokens][n_heads][n_blocks][2 + v_dim]), `sinks` and `o` (float)
// buffers and the push constants `pc`. With M the largest block maximum (and the sink's
// logit, a key with no value), each block's sum and values are rescaled by exp(m_b - M):
// out = sum_b exp(m_b - M) acc_b / (sum_b exp(m_b - M) l_b + exp(sink - M)).

// `used`: the blocks query t's keys fill (the ones written); invocation tid of n_threads.
void split_combine(uint h, uint t, uint used, uint tid, uint n_threads) {
    const uint stride = pc.v_dim + 2u;
    const uint base = (t * pc.n_heads + h) * pc.n_blocks * stride;

    // Every block holds at least one key, so M is finite and no weight is NaN.
    float big = pc.has_sinks != 0u ? sinks[h] : -1.0 / 0.0;
    for (uint b = 0; b < used; ++b) big = max(big, partials[base + b * stride]);
    float l = pc.has_sinks != 0u ? exp(sinks[h] - big) : 0.0;
    for (uint b = 0; b < used; ++b) l += partials[base + b * stride + 1u] * exp(partials[base + b * stride] - big);
    const float inv = 1.0 / l;

    const uint obase = (t * pc.n_heads + h) * pc.v_dim;
    for (uint d = tid; d < pc.v_dim; d += n_threads) {
        float acc = 0.0;
        for (uint b = 0; b < used; ++b)
            acc += exp(partials[base + b * stride] - big) * partials[base + b * stride + 2u + d];
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
