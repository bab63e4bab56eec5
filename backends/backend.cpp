// Default implementations of the Backend ops that are compositions of other ops, and the
// argument checks every backend shares.
#include <algorithm>
#include <vector>

#include "backends/backend.h"
#include "core/error.h"

namespace mst {

void Backend::routed_swiglu(const float *h, float *out, int64_t n_tokens, int64_t hidden,
                            const SwigluExpertUse *experts, size_t n_experts) {
    (void)n_tokens;
    std::vector<float> x, gate, up, y;
    for (size_t e = 0; e < n_experts; ++e) {
        const SwigluExpertUse &u = experts[e];
        const int64_t m = u.n, inter = u.gate.rows;
        if (m == 0) continue;
        x.resize(size_t(m * hidden));
        for (int64_t i = 0; i < m; ++i) std::copy_n(h + u.tokens[i] * hidden, hidden, x.data() + i * hidden);
        gate.resize(size_t(m * inter));
        up.resize(size_t(m * inter));
        y.resize(size_t(m * hidden));
        matmul(u.gate, x.data(), gate.data(), m);
        matmul(u.up, x.data(), up.data(), m);
        silu_mul(gate.data(), up.data(), gate.data(), m * inter);
        matmul(u.down, gate.data(), y.data(), m);
        for (int64_t i = 0; i < m; ++i) add_scaled(out + u.tokens[i] * hidden, u.weights[i], y.data() + i * hidden, hidden);
    }
}

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

}  // namespace mst
