#include "model/mla_attention.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace mst {
namespace {

// Bound on the per-head keys and values the expanded path holds at once.
constexpr int64_t kExpandedBytes = int64_t(64) << 20;

// Rows [first, first + count) of a row-major float weight.
WeightView row_slice(const WeightView &w, int64_t first, int64_t count) {
    const auto *bytes = static_cast<const uint8_t *>(w.data);
    WeightView v{w.dtype, bytes + size_t(first * w.cols) * dtype_size(w.dtype), count, w.cols};
    v.stable = w.stable;  // its own pointer and size, so its own device copy
    return v;
}

struct Dims {
    int64_t heads, nope, rope, qk, v, latent, row, kv_b_rows;  // kv_b_rows = nope + v per head
    explicit Dims(const MlaShape &s)
        : heads(s.n_heads),
          nope(s.qk_nope_dim),
          rope(s.qk_rope_dim),
          qk(s.qk_head_dim()),
          v(s.v_head_dim),
          latent(s.kv_lora_rank),
          row(int64_t(s.kv_lora_rank) + s.qk_rope_dim),
          kv_b_rows(nope + v) {}
};

// Per-head keys [nope | shared rope] and values from kv_b_proj over every cached latent,
// a group of heads at a time so that the expansion stays within kExpandedBytes.
void attend_expanded(Backend &backend, const MlaWeights &w, const MlaShape &s, const float *cache, const float *q,
                     int64_t n, int32_t pos0, float *attn) {
    const Dims d(s);
    const int64_t n_ctx = int64_t(pos0) + n;
    std::vector<float> latents(size_t(n_ctx * d.latent));
    for (int64_t j = 0; j < n_ctx; ++j) std::copy_n(cache + j * d.row, d.latent, latents.data() + j * d.latent);

    const int64_t width = std::max(d.qk, d.v);  // one stride serves keys and values
    const int64_t per_head = (n_ctx * (2 * width + d.kv_b_rows) + n * (d.qk + d.v)) * int64_t(sizeof(float));
    const int64_t group = std::clamp<int64_t>(kExpandedBytes / per_head, 1, d.heads);
    const int64_t stride = n_ctx * width;
    std::vector<float> kv, keys, values, q_group, out_group;
    for (int64_t h0 = 0; h0 < d.heads; h0 += group) {
        const int64_t nh = std::min(group, d.heads - h0);
        kv.resize(size_t(n_ctx * nh * d.kv_b_rows));
        backend.matmul(row_slice(w.kv_b, h0 * d.kv_b_rows, nh * d.kv_b_rows), latents.data(), kv.data(), n_ctx);
        keys.resize(size_t(nh * stride));
        values.resize(size_t(nh * stride));
        for (int64_t j = 0; j < n_ctx; ++j) {
            const float *shared_key = cache + j * d.row + d.latent;
            for (int64_t h = 0; h < nh; ++h) {
                const float *src = kv.data() + (j * nh + h) * d.kv_b_rows;
                float *key = keys.data() + h * stride + j * d.qk;
                std::copy_n(src, d.nope, key);
                std::copy_n(shared_key, d.rope, key + d.nope);
                std::copy_n(src + d.nope, d.v, values.data() + h * stride + j * d.v);
            }
        }
        q_group.resize(size_t(n * nh * d.qk));
        for (int64_t t = 0; t < n; ++t)
            std::copy_n(q + (t * d.heads + h0) * d.qk, nh * d.qk, q_group.data() + t * nh * d.qk);

        AttentionParams ap;
        ap.n_tokens = int32_t(n);
        ap.n_heads = int32_t(nh);
        ap.n_kv_heads = int32_t(nh);
        ap.head_dim = int32_t(d.qk);
        ap.v_head_dim = int32_t(d.v);
        ap.pos0 = pos0;
        ap.kv_stride = stride;
        ap.scale = s.softmax_scale;
        out_group.resize(size_t(n * nh * d.v));
        backend.attention(q_group.data(), keys.data(), values.data(), out_group.data(), ap);
        for (int64_t t = 0; t < n; ++t)
            std::copy_n(out_group.data() + t * nh * d.v, nh * d.v, attn + (t * d.heads + h0) * d.v);
    }
}

// Each head's query moved into latent space (q_nope^T W_uk, W_uk its key rows of kv_b),
// attention over the latent rows, then the head's value rows W_uv applied to the result.
void attend_absorbed(Backend &backend, const MlaWeights &w, const MlaShape &s, const float *cache, const float *q,
                     int64_t n, int32_t pos0, float *attn) {
    const Dims d(s);
    std::vector<float> q_nope(size_t(n * d.nope)), q_latent(size_t(n * d.latent));
    std::vector<float> q_absorbed(size_t(n * d.heads * d.row));
    for (int64_t h = 0; h < d.heads; ++h) {
        for (int64_t t = 0; t < n; ++t) std::copy_n(q + (t * d.heads + h) * d.qk, d.nope, q_nope.data() + t * d.nope);
        backend.matmul_transposed(row_slice(w.kv_b, h * d.kv_b_rows, d.nope), q_nope.data(), q_latent.data(), n);
        for (int64_t t = 0; t < n; ++t) {
            float *dst = q_absorbed.data() + (t * d.heads + h) * d.row;
            std::copy_n(q_latent.data() + t * d.latent, d.latent, dst);
            std::copy_n(q + (t * d.heads + h) * d.qk + d.nope, d.rope, dst + d.latent);
        }
    }

    LatentAttentionParams lp;
    lp.n_tokens = int32_t(n);
    lp.n_heads = int32_t(d.heads);
    lp.latent_dim = int32_t(d.latent);
    lp.rope_dim = int32_t(d.rope);
    lp.pos0 = pos0;
    lp.scale = s.softmax_scale;
    std::vector<float> out_latent(size_t(n * d.heads * d.latent));
    backend.latent_attention(q_absorbed.data(), cache, out_latent.data(), lp);

    std::vector<float> head_latent(size_t(n * d.latent)), head_out(size_t(n * d.v));
    for (int64_t h = 0; h < d.heads; ++h) {
        for (int64_t t = 0; t < n; ++t)
            std::copy_n(out_latent.data() + (t * d.heads + h) * d.latent, d.latent, head_latent.data() + t * d.latent);
        backend.matmul(row_slice(w.kv_b, h * d.kv_b_rows + d.nope, d.v), head_latent.data(), head_out.data(), n);
        for (int64_t t = 0; t < n; ++t) std::copy_n(head_out.data() + t * d.v, d.v, attn + (t * d.heads + h) * d.v);
    }
}

}  // namespace

MlaPath choose_mla_path(const MlaShape &shape, int64_t n_tokens, int32_t pos0) {
    const Dims d(shape);
    const double n = double(n_tokens), ctx = double(pos0) + n, kv_b = double(d.heads * d.kv_b_rows * d.latent);
    // Multiply-adds of each path (the causal halving applies to both alike).
    const double expanded = ctx * kv_b + n * ctx * double(d.heads * (d.qk + d.v));
    const double absorbed = n * kv_b + n * ctx * double(d.heads * (2 * d.latent + d.rope));
    return absorbed < expanded ? MlaPath::Absorbed : MlaPath::Expanded;
}

float mla_softmax_scale(const ModelConfig &config, int32_t qk_head_dim) {
    double scale = 1.0 / std::sqrt(double(qk_head_dim));
    const RopeScaling &rs = config.rope_scaling;
    if (rs.type != "default" && rs.mscale_all_dim != 0.0 && rs.factor > 1.0) {
        const double mscale = 0.1 * rs.mscale_all_dim * std::log(rs.factor) + 1.0;
        scale *= mscale * mscale;
    }
    return float(scale);
}

namespace {

void attention_impl(Backend &backend, const MlaWeights &w, const MlaShape &s, const RopeTable &rope,
                    std::span<const LatentSegment> segments, int32_t layer, const float *h, int64_t n, float *out,
                    MlaPath path) {
    const Dims d(s);
    for (const LatentSegment &seg : segments)
        if (int64_t(seg.pos0) + seg.n_tokens > seg.cache->n_ctx())
            fail(MST_ERR_INTERNAL, "MLA layer {}: positions {}..{} exceed the cache's {}", layer, seg.pos0,
                 seg.pos0 + seg.n_tokens - 1, seg.cache->n_ctx());
    std::vector<float> q(size_t(n * d.heads * d.qk));
    if (s.q_lora_rank > 0) {
        std::vector<float> q_low(size_t(n * s.q_lora_rank));
        run_linear(backend, w.q_a, h, q_low.data(), n);
        backend.rms_norm(q_low.data(), w.q_a_norm, 0.0f, s.norm_eps, q_low.data(), n, s.q_lora_rank);
        run_linear(backend, w.q_b, q_low.data(), q.data(), n);
    } else {
        run_linear(backend, w.q, h, q.data(), n);
    }

    std::vector<float> compressed(size_t(n * d.row)), latent(size_t(n * d.latent)), k_rope(size_t(n * d.rope));
    std::vector<float> q_rope(size_t(n * d.heads * d.rope));
    run_linear(backend, w.kv_a, h, compressed.data(), n);
    for (int64_t t = 0; t < n; ++t) {
        std::copy_n(compressed.data() + t * d.row, d.latent, latent.data() + t * d.latent);
        std::copy_n(compressed.data() + t * d.row + d.latent, d.rope, k_rope.data() + t * d.rope);
        for (int64_t hd = 0; hd < d.heads; ++hd)
            std::copy_n(q.data() + (t * d.heads + hd) * d.qk + d.nope, d.rope,
                        q_rope.data() + (t * d.heads + hd) * d.rope);
    }
    backend.rms_norm(latent.data(), w.kv_a_norm, 0.0f, s.norm_eps, latent.data(), n, d.latent);
    std::vector<int32_t> positions(static_cast<size_t>(n));
    for (const LatentSegment &seg : segments)
        std::iota(positions.begin() + seg.row0, positions.begin() + seg.row0 + seg.n_tokens, seg.pos0);
    const RopeParams rp = rope.params();
    backend.rope(q_rope.data(), n, d.heads, d.rope, positions.data(), rp);
    backend.rope(k_rope.data(), n, 1, d.rope, positions.data(), rp);

    for (int64_t t = 0; t < n; ++t)
        for (int64_t hd = 0; hd < d.heads; ++hd)
            std::copy_n(q_rope.data() + (t * d.heads + hd) * d.rope, d.rope,
                        q.data() + (t * d.heads + hd) * d.qk + d.nope);
    std::vector<float> attn(size_t(n * d.heads * d.v));
    for (const LatentSegment &seg : segments) {
        float *rows = seg.cache->rows(layer);
        for (int64_t t = seg.row0; t < seg.row0 + seg.n_tokens; ++t) {
            float *row = rows + (seg.pos0 + t - seg.row0) * d.row;
            std::copy_n(latent.data() + t * d.latent, d.latent, row);
            std::copy_n(k_rope.data() + t * d.rope, d.rope, row + d.latent);
        }
        const float *q_seg = q.data() + seg.row0 * d.heads * d.qk;
        float *attn_seg = attn.data() + seg.row0 * d.heads * d.v;
        const MlaPath seg_path = path == MlaPath::Automatic ? choose_mla_path(s, seg.n_tokens, seg.pos0) : path;
        if (seg_path == MlaPath::Absorbed) {
            attend_absorbed(backend, w, s, rows, q_seg, seg.n_tokens, seg.pos0, attn_seg);
        } else {
            attend_expanded(backend, w, s, rows, q_seg, seg.n_tokens, seg.pos0, attn_seg);
        }
    }
    run_linear(backend, w.o, attn.data(), out, n);
}

}  // namespace

void mla_attention(Backend &backend, const MlaWeights &w, const MlaShape &s, const RopeTable &rope,
                   LatentKvCache &cache, int32_t layer, const float *h, int64_t n, int32_t pos0, float *out,
                   MlaPath path) {
    const LatentSegment one{&cache, 0, n, pos0};
    attention_impl(backend, w, s, rope, {&one, 1}, layer, h, n, out, path);
}

void mla_attention_segments(Backend &backend, const MlaWeights &w, const MlaShape &s, const RopeTable &rope,
                            std::span<const LatentSegment> segments, int32_t layer, const float *h, int64_t n_rows,
                            float *out) {
    attention_impl(backend, w, s, rope, segments, layer, h, n_rows, out, MlaPath::Automatic);
}

}  // namespace mst
