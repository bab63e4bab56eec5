// Attention of many heads over one shared latent cache (absorbed MLA). Every head reads
// the same rows, so a work item is one query token and a group of heads as wide as the
// dot kernel's token tile: each cached row is loaded once per group for the scores and
// once per group for the weighted sum.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/parallel_for.h"

namespace mst {

void CpuBackend::latent_attention(const float *q, const float *cache, float *out, const LatentAttentionParams &p) {
    check_latent_attention_params(q, cache, out, p);
    if (p.n_tokens == 0) return;

    const CpuKernels &k = kernels_;
    const int64_t row = int64_t(p.latent_dim) + p.rope_dim;
    const int64_t group = std::min<int64_t>(k.max_tokens, p.n_heads);
    const int64_t groups_per_token = (p.n_heads + group - 1) / group;
    const int64_t n_items = int64_t(p.n_tokens) * groups_per_token;
    const int64_t n_ctx = int64_t(p.pos0) + p.n_tokens;
    const int threads = threads_for(int64_t(p.n_tokens) * p.n_heads * n_ctx * (row + p.latent_dim));

    // Causal items differ in length, so they are handed out one by one; each thread keeps
    // its scratch across the items it takes.
    parallel_for_dynamic(n_items, threads, 1, [&](int64_t item_begin, int64_t item_end) {
        thread_local std::vector<float> scores, inv_denom;
        scores.resize(static_cast<size_t>(group * n_ctx));
        inv_denom.resize(static_cast<size_t>(group));
        for (int64_t item = item_begin; item < item_end; ++item) {
            const int64_t t = item / groups_per_token, h0 = (item % groups_per_token) * group;
            const int64_t n_heads = std::min(group, int64_t(p.n_heads) - h0);
            const int64_t n_keys = p.pos0 + t + 1;
            const float *qt = q + (t * p.n_heads + h0) * row;
            k.dot_rows_f32(cache, n_keys, row, qt, row, int(n_heads), scores.data(), n_ctx);

            for (int64_t h = 0; h < n_heads; ++h) {
                float *s = scores.data() + h * n_ctx;
                float max_logit = -std::numeric_limits<float>::infinity();
                for (int64_t j = 0; j < n_keys; ++j) {
                    s[j] *= p.scale;
                    max_logit = std::max(max_logit, s[j]);
                }
                inv_denom[size_t(h)] = 1.0f / k.exp_shift_sum(s, n_keys, max_logit);
            }
            float *o = out + (t * p.n_heads + h0) * p.latent_dim;
            std::fill(o, o + n_heads * p.latent_dim, 0.0f);
            for (int64_t j = 0; j < n_keys; ++j)
                for (int64_t h = 0; h < n_heads; ++h)
                    k.axpy(p.latent_dim, scores[size_t(h * n_ctx + j)], cache + j * row, o + h * p.latent_dim);
            for (int64_t h = 0; h < n_heads; ++h)
                for (int64_t d = 0; d < p.latent_dim; ++d) o[h * p.latent_dim + d] *= inv_denom[size_t(h)];
        }
    });
}

}  // namespace mst
