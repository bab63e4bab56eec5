#include "model/gated_attention.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace mst {
namespace {

void add_bias(float *x, const std::vector<float> &bias, int64_t n_rows) {
    const int64_t dim = int64_t(bias.size());
    for (int64_t r = 0; r < n_rows && dim > 0; ++r)
        for (int64_t c = 0; c < dim; ++c) x[r * dim + c] += bias[size_t(c)];
}

}  // namespace

GatedAttentionWeights load_gated_attention(ResidentWeights &weights, const std::string &p, const GqaShape &s, int64_t H,
                                           bool bias) {
    const int64_t q_dim = int64_t(s.n_heads) * s.head_dim, kv_dim = int64_t(s.n_kv_heads) * s.head_dim;
    GatedAttentionWeights w;
    w.q_gate = weights.load(p + "q_proj.weight", {2 * q_dim, H});
    w.k = weights.load(p + "k_proj.weight", {kv_dim, H});
    w.v = weights.load(p + "v_proj.weight", {kv_dim, H});
    w.o = weights.load(p + "o_proj.weight", {H, q_dim});
    w.q_norm = weights.load(p + "q_norm.weight", {s.head_dim});
    w.k_norm = weights.load(p + "k_norm.weight", {s.head_dim});
    if (bias) {
        w.q_gate_bias = weights.load_f32(p + "q_proj.bias", {2 * q_dim});
        w.k_bias = weights.load_f32(p + "k_proj.bias", {kv_dim});
        w.v_bias = weights.load_f32(p + "v_proj.bias", {kv_dim});
        w.o_bias = weights.load_f32(p + "o_proj.bias", {H});
    }
    return w;
}

void gated_attention(Backend &backend, const GatedAttentionWeights &w, const GqaShape &s, const RopeTable &rope,
                     KvCache &cache, int32_t cache_layer, const float *h, int64_t n, int32_t pos0, float *out) {
    const int64_t hd = s.head_dim, q_dim = int64_t(s.n_heads) * hd, kv_dim = int64_t(s.n_kv_heads) * hd;
    std::vector<float> q_gate(size_t(n * 2 * q_dim)), k(size_t(n * kv_dim)), v(size_t(n * kv_dim));
    {
        // One input: a backend may run them as one product (one parallel region on the CPU).
        const WeightView ws[] = {w.q_gate, w.k, w.v};
        float *const ys[] = {q_gate.data(), k.data(), v.data()};
        backend.matmuls_one_input(ws, ys, h, n);
    }
    add_bias(q_gate.data(), w.q_gate_bias, n);
    add_bias(k.data(), w.k_bias, n);
    add_bias(v.data(), w.v_bias, n);

    // Separate each head's [query | gate] rows.
    std::vector<float> q(size_t(n * q_dim)), gate(size_t(n * q_dim));
    for (int64_t row = 0; row < n * s.n_heads; ++row) {
        const float *src = q_gate.data() + row * 2 * hd;
        std::copy(src, src + hd, q.data() + row * hd);
        std::copy(src + hd, src + 2 * hd, gate.data() + row * hd);
    }
    backend.rms_norm(q.data(), w.q_norm, s.norm_weight_offset, s.norm_eps, q.data(), n * s.n_heads, hd);
    backend.rms_norm(k.data(), w.k_norm, s.norm_weight_offset, s.norm_eps, k.data(), n * s.n_kv_heads, hd);

    std::vector<int32_t> positions(static_cast<size_t>(n));
    std::iota(positions.begin(), positions.end(), pos0);
    const RopeParams rp = rope.params();
    backend.rope(q.data(), n, s.n_heads, hd, positions.data(), rp);
    backend.rope(k.data(), n, s.n_kv_heads, hd, positions.data(), rp);
    cache.store(cache_layer, pos0, int32_t(n), k.data(), v.data());

    AttentionParams ap;
    ap.n_tokens = int32_t(n);
    ap.n_heads = s.n_heads;
    ap.n_kv_heads = s.n_kv_heads;
    ap.head_dim = s.head_dim;
    ap.v_head_dim = s.head_dim;
    ap.pos0 = pos0;
    ap.cache_id = cache.id(cache_layer);
    ap.kv_stride = cache.k_stride();
    ap.scale = 1.0f / std::sqrt(float(hd));
    std::vector<float> attn(size_t(n * q_dim));
    backend.attention(q.data(), cache.keys(cache_layer), cache.values(cache_layer), attn.data(), ap);
    backend.sigmoid_mul(attn.data(), gate.data(), n, q_dim, q_dim);
    backend.matmul(w.o, attn.data(), out, n);
    add_bias(out, w.o_bias, n);
}

}  // namespace mst
