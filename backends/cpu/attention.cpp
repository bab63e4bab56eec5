// Causal softmax attention over the KV cache. One token (decode): one work item is one or
// more query heads of a kv group: their scores are one pass of the row kernels over the
// keys they may see (contiguous rows of the cache), then a softmax per head, then a
// weighted sum of the value rows. Several tokens (a prompt): one work item is a block of
// query tokens and heads, which walk the keys in blocks with an online softmax (a running
// maximum and sum per query, the partial value sums rescaled when the maximum grows), so
// each block of keys and values is read from memory once for all the queries of the item
// instead of once per query, and a long prompt's scores never need a row per key.
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

// Keys per block on the prompt path: one kv head's K and V rows of a block (256 KiB at
// head_dim 128) stay in L2 while every query of an item passes over them. A query whose
// keys fit in one block takes the one-token path's sums in its order.
constexpr int64_t kKeyBlock = 256;
// Query tokens per work item on the prompt path.
constexpr int64_t kTokenBlock = 16;

// The prompt path (see the top of the file). hpi query heads of one kv group, for the
// tokens [t0, t1): acc, run_max and run_sum hold each (token, head)'s running state.
void prompt_attention(const CpuKernels &k, const float *q, const float *k_cache, const float *v_cache, float *out,
                      const AttentionParams &p, int threads) {
    const int64_t group = p.n_heads / p.n_kv_heads;
    const int64_t n_token_blocks = (int64_t(p.n_tokens) + kTokenBlock - 1) / kTokenBlock;
    const int64_t hpi = heads_per_item(group, n_token_blocks, p.n_heads, k.max_tokens, threads);
    const int64_t items_per_block = p.n_heads / hpi;
    const int64_t vd = p.v_head_dim;
    const float no_max = -std::numeric_limits<float>::infinity();

    parallel_for_dynamic(n_token_blocks * items_per_block, threads, 1, [&](int64_t item0, int64_t item1) {
        thread_local std::vector<float> scores, acc, run_max, run_sum;
        scores.resize(size_t(hpi * kKeyBlock));
        acc.resize(size_t(kTokenBlock * hpi * vd));
        run_max.resize(size_t(kTokenBlock * hpi));
        run_sum.resize(size_t(kTokenBlock * hpi));
        for (int64_t item = item0; item < item1; ++item) {
            const int64_t t0 = item / items_per_block * kTokenBlock, h0 = item % items_per_block * hpi, kv = h0 / group;
            const int64_t t1 = std::min<int64_t>(p.n_tokens, t0 + kTokenBlock);
            const auto first_key = [&](int64_t pos) {
                return p.sliding_window > 0 ? std::max<int64_t>(0, pos - p.sliding_window + 1) : int64_t(0);
            };
            // A sink is one more logit in the denominator (gpt-oss): it starts the running
            // maximum, as the one-token path takes it into the maximum, and joins the sum last.
            for (int64_t i = 0; i < (t1 - t0) * hpi; ++i) {
                run_max[size_t(i)] = p.sinks != nullptr ? p.sinks[h0 + i % hpi] : no_max;
                run_sum[size_t(i)] = 0.0f;
            }
            std::fill(acc.begin(), acc.begin() + (t1 - t0) * hpi * vd, 0.0f);
            const float *kh = k_cache + kv * p.kv_stride, *vh = v_cache + kv * p.kv_stride;
            const int64_t last_pos = p.pos0 + t1 - 1;
            for (int64_t j0 = first_key(p.pos0 + t0) / kKeyBlock * kKeyBlock; j0 <= last_pos; j0 += kKeyBlock) {
                for (int64_t t = t0; t < t1; ++t) {
                    const int64_t pos = p.pos0 + t;
                    const int64_t lo = std::max(j0, first_key(pos)), hi = std::min(j0 + kKeyBlock - 1, pos);
                    if (lo > hi) continue;
                    const int64_t n = hi - lo + 1;
                    k.dot_rows_f32(kh + lo * p.head_dim, n, p.head_dim, q + (t * p.n_heads + h0) * p.head_dim,
                                   p.head_dim, int(hpi), scores.data(), n);
                    float *acc_t = acc.data() + (t - t0) * hpi * vd;
                    for (int64_t g = 0; g < hpi; ++g) {
                        float *s = scores.data() + g * n;
                        float block_max = no_max;
                        for (int64_t j = 0; j < n; ++j) {
                            s[j] *= p.scale;
                            block_max = std::max(block_max, s[j]);
                        }
                        const size_t i = size_t((t - t0) * hpi + g);
                        const float old_max = run_max[i], new_max = std::max(old_max, block_max);
                        // What was summed against the old maximum, moved to the new one.
                        const float keep = old_max == no_max ? 0.0f : std::exp(old_max - new_max);
                        run_sum[i] = run_sum[i] * keep + k.exp_shift_sum(s, n, new_max);
                        run_max[i] = new_max;
                        if (keep != 1.0f)
                            for (int64_t d = 0; d < vd; ++d) acc_t[g * vd + d] *= keep;
                    }
                    // Key-major, so each value row is read once for all hpi heads.
                    for (int64_t j = 0; j < n; ++j)
                        for (int64_t g = 0; g < hpi; ++g)
                            k.axpy(vd, scores[size_t(g * n + j)], vh + (lo + j) * vd, acc_t + g * vd);
                }
            }
            for (int64_t t = t0; t < t1; ++t)
                for (int64_t g = 0; g < hpi; ++g) {
                    const size_t i = size_t((t - t0) * hpi + g);
                    float denom = run_sum[i];
                    if (p.sinks != nullptr) denom += std::exp(p.sinks[h0 + g] - run_max[i]);
                    const float inv_denom = 1.0f / denom;
                    const float *a = acc.data() + i * size_t(vd);
                    float *o = out + (t * p.n_heads + h0 + g) * vd;
                    for (int64_t d = 0; d < vd; ++d) o[d] = a[d] * inv_denom;
                }
        }
    });
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
    if (p.n_tokens > 1) return prompt_attention(k, q, k_cache, v_cache, out, p, threads);
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
