// Causal softmax attention over the KV cache. One work item is one (query token, head):
// its scores are a matrix-vector product over the keys it may see (contiguous rows of the
// cache), then a softmax, then a weighted sum of the value rows.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "core/error.h"

namespace mst {
namespace {

void check_attention_params(const float *q, const float *k_cache, const float *v_cache, const float *out,
                            const AttentionParams &p) {
    if (p.n_tokens < 0 || p.n_heads <= 0 || p.n_kv_heads <= 0 || p.head_dim <= 0 || p.v_head_dim <= 0 ||
        p.pos0 < 0 || p.sliding_window < 0)
        fail(MST_ERR_INVALID_ARGUMENT,
             "attention: bad parameters (n_tokens {}, n_heads {}, n_kv_heads {}, head_dim {}, v_head_dim {}, "
             "pos0 {}, sliding_window {})",
             p.n_tokens, p.n_heads, p.n_kv_heads, p.head_dim, p.v_head_dim, p.pos0, p.sliding_window);
    if (p.n_heads % p.n_kv_heads != 0)
        fail(MST_ERR_INVALID_ARGUMENT, "attention: n_heads {} is not a multiple of n_kv_heads {}", p.n_heads,
             p.n_kv_heads);
    const int64_t n_ctx = int64_t(p.pos0) + p.n_tokens;
    if (p.n_kv_heads > 1 && p.kv_stride < n_ctx * std::max(p.head_dim, p.v_head_dim))
        fail(MST_ERR_INVALID_ARGUMENT, "attention: kv_stride {} is below {} positions x {} dims", p.kv_stride, n_ctx,
             std::max(p.head_dim, p.v_head_dim));
    if (p.n_tokens > 0 && (q == nullptr || k_cache == nullptr || v_cache == nullptr || out == nullptr))
        fail(MST_ERR_INVALID_ARGUMENT, "attention: null pointer");
}

}  // namespace

void CpuBackend::attention(const float *q, const float *k_cache, const float *v_cache, float *out,
                           const AttentionParams &p) {
    check_attention_params(q, k_cache, v_cache, out, p);
    if (p.n_tokens == 0) return;

    const int64_t group = p.n_heads / p.n_kv_heads;
    const int64_t n_items = int64_t(p.n_tokens) * p.n_heads;
    const int64_t n_ctx = int64_t(p.pos0) + p.n_tokens;
    const int threads = threads_for(n_items * n_ctx * (p.head_dim + p.v_head_dim));
    const CpuKernels &k = kernels_;

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        std::vector<float> scores(size_t(n_ctx), 0.0f);
        // Items vary in length (causal, windowed), so they are handed out one by one.
        // Heads of one kv group are adjacent items and so share its keys in cache.
#pragma omp for schedule(dynamic, 1)
        for (int64_t item = 0; item < n_items; ++item) {
            const int64_t t = item / p.n_heads, h = item % p.n_heads, kv = h / group;
            const int64_t pos = p.pos0 + t;
            const int64_t first = p.sliding_window > 0 ? std::max<int64_t>(0, pos - p.sliding_window + 1) : 0;
            const int64_t n_keys = pos - first + 1;

            k.dot_rows_f32(k_cache + kv * p.kv_stride + first * p.head_dim, n_keys, p.head_dim,
                           q + item * p.head_dim, 0, 1, scores.data(), 1);
            float max_logit = -std::numeric_limits<float>::infinity();
            for (int64_t j = 0; j < n_keys; ++j) {
                scores[size_t(j)] *= p.scale;
                max_logit = std::max(max_logit, scores[size_t(j)]);
            }
            // A sink is one more logit in the denominator (gpt-oss): it takes probability
            // mass from every key but has no value row.
            const float sink = p.sinks != nullptr ? p.sinks[h] : 0.0f;
            if (p.sinks != nullptr) max_logit = std::max(max_logit, sink);
            float denom = k.exp_shift_sum(scores.data(), n_keys, max_logit);
            if (p.sinks != nullptr) denom += std::exp(sink - max_logit);

            float *o = out + item * p.v_head_dim;
            std::fill(o, o + p.v_head_dim, 0.0f);
            const float *v = v_cache + kv * p.kv_stride + first * p.v_head_dim;
            for (int64_t j = 0; j < n_keys; ++j) k.axpy(p.v_head_dim, scores[size_t(j)], v + j * p.v_head_dim, o);
            const float inv = 1.0f / denom;
            for (int64_t d = 0; d < p.v_head_dim; ++d) o[d] *= inv;
        }
    }
}

}  // namespace mst
