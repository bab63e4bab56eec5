// Causal softmax attention over the KV cache. One work item is one query token and one or
// more query heads of a kv group: their scores are one pass of the row kernels over the
// keys they may see (contiguous rows of the cache), then a softmax per head, then a
// weighted sum of the value rows.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/parallel_for.h"
#include "core/op_profile.h"

namespace mst {
namespace {

// Query heads per work item: heads of one kv group that share each key and value row
// as it is read (the row kernels take up to max_tokens vectors at once). Fewer when that
// would leave threads idle: at least 4 items per thread, or one head per item.
int64_t heads_per_item(int64_t group, int64_t n_tokens, int64_t n_heads, int64_t max_tokens, int threads) {
    for (int64_t h = std::min(group, max_tokens); h > 1; --h)
        if (group % h == 0 && n_tokens * n_heads / h >= 4 * int64_t(threads)) return h;
    return 1;
}

}  // namespace

void CpuBackend::attention(const float *q, const float *k_cache, const float *v_cache, float *out,
                           const AttentionParams &p) {
    check_attention_params(q, k_cache, v_cache, out, p);
    if (p.n_tokens == 0) return;
    // Bytes: the K and V rows of every kv head up to the last query's position.
    const OpTimer timer("attention", uint64_t(p.n_kv_heads) * uint64_t(p.pos0 + p.n_tokens) *
                                         uint64_t(p.head_dim + p.v_head_dim) * sizeof(float));

    const int64_t group = p.n_heads / p.n_kv_heads;
    const int64_t n_ctx = int64_t(p.pos0) + p.n_tokens;
    const int threads = threads_for(int64_t(p.n_tokens) * p.n_heads * n_ctx * (p.head_dim + p.v_head_dim));
    const CpuKernels &k = kernels_;
    const int64_t hpi = heads_per_item(group, p.n_tokens, p.n_heads, k.max_tokens, threads);
    const int64_t items_per_token = p.n_heads / hpi;
    const int64_t n_items = int64_t(p.n_tokens) * items_per_token;

    // Items vary in length (causal, windowed), so they are handed out one by one; each
    // thread keeps its scratch across the items it takes.
    parallel_for_dynamic(n_items, threads, 1, [&](int64_t item0, int64_t item1) {
        // Row g holds the scores, then the probabilities, of head h0 + g.
        thread_local std::vector<float> scores;
        scores.resize(static_cast<size_t>(hpi * n_ctx));
        for (int64_t item = item0; item < item1; ++item) {
            const int64_t t = item / items_per_token, h0 = item % items_per_token * hpi, kv = h0 / group;
            const int64_t pos = p.pos0 + t;
            const int64_t first = p.sliding_window > 0 ? std::max<int64_t>(0, pos - p.sliding_window + 1) : 0;
            const int64_t n_keys = pos - first + 1;

            // The hpi query heads are adjacent in q, so they are the "tokens" of one pass
            // over the keys.
            k.dot_rows_f32(k_cache + kv * p.kv_stride + first * p.head_dim, n_keys, p.head_dim,
                           q + (t * p.n_heads + h0) * p.head_dim, p.head_dim, int(hpi), scores.data(), n_keys);
            float inv_denom[CpuKernels::kMaxTokensAny];
            for (int64_t g = 0; g < hpi; ++g) {
                float *s = scores.data() + g * n_keys;
                float max_logit = -std::numeric_limits<float>::infinity();
                for (int64_t j = 0; j < n_keys; ++j) {
                    s[j] *= p.scale;
                    max_logit = std::max(max_logit, s[j]);
                }
                // A sink is one more logit in the denominator (gpt-oss): it takes
                // probability mass from every key but has no value row.
                const float sink = p.sinks != nullptr ? p.sinks[h0 + g] : 0.0f;
                if (p.sinks != nullptr) max_logit = std::max(max_logit, sink);
                float denom = k.exp_shift_sum(s, n_keys, max_logit);
                if (p.sinks != nullptr) denom += std::exp(sink - max_logit);
                inv_denom[g] = 1.0f / denom;
            }

            float *o = out + (t * p.n_heads + h0) * p.v_head_dim;
            std::fill(o, o + hpi * p.v_head_dim, 0.0f);
            const float *v = v_cache + kv * p.kv_stride + first * p.v_head_dim;
            // Key-major, so each value row is read from memory once for all hpi heads.
            for (int64_t j = 0; j < n_keys; ++j)
                for (int64_t g = 0; g < hpi; ++g)
                    k.axpy(p.v_head_dim, scores[size_t(g * n_keys + j)], v + j * p.v_head_dim, o + g * p.v_head_dim);
            for (int64_t g = 0; g < hpi; ++g)
                for (int64_t d = 0; d < p.v_head_dim; ++d) o[g * p.v_head_dim + d] *= inv_denom[g];
        }
    });
}

}  // namespace mst
