#include "model/gqa_attention.h"

#include <cmath>
#include <numeric>

namespace mst {
namespace {

void add_bias(float *x, const std::vector<float> &bias, int64_t n_rows) {
    if (bias.empty()) return;
    const int64_t dim = int64_t(bias.size());
    for (int64_t r = 0; r < n_rows; ++r)
        for (int64_t c = 0; c < dim; ++c) x[r * dim + c] += bias[size_t(c)];
}

}  // namespace

namespace {

// The attention of both entry points; with `norm`, h = rms_norm(x) first (x, h given).
struct InputNorm {
    const float *x;
    const WeightView *weight;
    float eps;
    float *h;  // receives the normalised x; the h the attention reads
};

void attention_impl(Backend &backend, const GqaWeights &w, const GqaShape &s, const RopeTable &rope,
                    std::span<const AttentionSegment> segments, int32_t layer, const InputNorm *norm, const float *h,
                    int64_t n, float *out) {
    const int64_t q_dim = int64_t(s.n_heads) * s.head_dim, kv_dim = int64_t(s.n_kv_heads) * s.head_dim;
    // BackendVector: this may be part of a caller's batch that runs after these are gone.
    BackendVector q(backend, size_t(n * q_dim)), k(backend, size_t(n * kv_dim)), v(backend, size_t(n * kv_dim));
    std::vector<int32_t> positions(static_cast<size_t>(n));
    for (const AttentionSegment &seg : segments)
        std::iota(positions.begin() + seg.row0, positions.begin() + seg.row0 + seg.n_tokens, seg.pos0);
    const RopeParams rp = rope.params();
    const bool biases = !w.q_bias.empty() || !w.k_bias.empty() || !w.v_bias.empty();
    auto project = [&] {
        if (norm) backend.rms_norm(norm->x, *norm->weight, 0.0f, norm->eps, norm->h, n, norm->weight->rows * norm->weight->cols);
        // One input: a backend may run them as one product (one parallel region on the CPU).
        const WeightView qkv[] = {w.q, w.k, w.v};
        float *const outs[] = {q.data(), k.data(), v.data()};
        backend.matmuls_one_input(qkv, outs, h, n);
    };
    auto norm_rope = [&] {
        if (w.q_norm.data) backend.rms_norm(q.data(), w.q_norm, s.norm_weight_offset, s.norm_eps, q.data(), n * s.n_heads, s.head_dim);
        if (w.k_norm.data) backend.rms_norm(k.data(), w.k_norm, s.norm_weight_offset, s.norm_eps, k.data(), n * s.n_kv_heads, s.head_dim);
        backend.rope(q.data(), n, s.n_heads, s.head_dim, positions.data(), rp);
        backend.rope(k.data(), n, s.n_kv_heads, s.head_dim, positions.data(), rp);
    };
    auto store_kv = [&] {
        for (const AttentionSegment &seg : segments)
            seg.cache->store(backend, layer, seg.pos0, int32_t(seg.n_tokens), k.data() + seg.row0 * kv_dim,
                             v.data() + seg.row0 * kv_dim);
    };
    if (biases) {
        // The biases are added on the host between the products and the rotations (sync:
        // this may be part of a caller's larger batch).
        {
            BackendBatch batch(backend);
            project();
            backend.sync();
        }
        add_bias(q.data(), w.q_bias, n);
        add_bias(k.data(), w.k_bias, n);
        add_bias(v.data(), w.v_bias, n);
        BackendBatch batch(backend);
        norm_rope();
        store_kv();
    } else {
        // One submission on a device backend: the products, norms, rotations and the KV append.
        BackendBatch batch(backend);
        project();
        norm_rope();
        store_kv();
    }

    BackendVector attn(backend, size_t(n * q_dim));
    {
        BackendBatch batch(backend);
        for (const AttentionSegment &seg : segments) {
            AttentionParams ap;
            ap.n_tokens = int32_t(seg.n_tokens);
            ap.n_heads = s.n_heads;
            ap.n_kv_heads = s.n_kv_heads;
            ap.head_dim = s.head_dim;
            ap.v_head_dim = s.head_dim;
            ap.pos0 = seg.pos0;
            ap.cache_id = seg.cache->id(layer);
            ap.kv_stride = seg.cache->k_stride();
            ap.scale = 1.0f / std::sqrt(float(s.head_dim));
            ap.sliding_window = s.sliding_window;
            ap.sinks = w.sinks.empty() ? nullptr : w.sinks.data();
            backend.attention(q.data() + seg.row0 * q_dim, seg.cache->keys(layer), seg.cache->values(layer),
                              attn.data() + seg.row0 * q_dim, ap);
        }
        backend.matmul(w.o, attn.data(), out, n);
        if (!w.o_bias.empty()) backend.sync();
    }
    add_bias(out, w.o_bias, n);
}

}  // namespace

void gqa_attention(Backend &backend, const GqaWeights &w, const GqaShape &s, const RopeTable &rope, KvCache &cache,
                   int32_t layer, const float *h, int64_t n, int32_t pos0, float *out) {
    const AttentionSegment one{&cache, 0, n, pos0};
    attention_impl(backend, w, s, rope, {&one, 1}, layer, nullptr, h, n, out);
}

void gqa_attention_normed(Backend &backend, const GqaWeights &w, const GqaShape &s, const RopeTable &rope,
                          KvCache &cache, int32_t layer, const float *x, const WeightView &input_norm, float eps,
                          float *h, int64_t n, int32_t pos0, float *out) {
    const InputNorm norm{x, &input_norm, eps, h};
    const AttentionSegment one{&cache, 0, n, pos0};
    attention_impl(backend, w, s, rope, {&one, 1}, layer, &norm, h, n, out);
}

void gqa_attention_segments(Backend &backend, const GqaWeights &w, const GqaShape &s, const RopeTable &rope,
                            std::span<const AttentionSegment> segments, int32_t layer, const float *x,
                            const WeightView &input_norm, float eps, float *h, int64_t n_rows, float *out) {
    const InputNorm norm{x, &input_norm, eps, h};
    attention_impl(backend, w, s, rope, segments, layer, &norm, h, n_rows, out);
}

}  // namespace mst
