#include "model/kv_cache.h"

#include <algorithm>
#include <atomic>

namespace mst {
namespace {
std::atomic<uint64_t> next_cache_id{1};

uint64_t take_ids(int32_t n_layers) { return next_cache_id.fetch_add(uint64_t(n_layers > 0 ? n_layers : 1)); }
}  // namespace

KvCache::KvCache(int32_t n_layers, int32_t n_ctx, int32_t n_kv_heads, int32_t head_dim, int32_t v_head_dim)
    : n_ctx_(n_ctx), n_kv_heads_(n_kv_heads), head_dim_(head_dim), v_head_dim_(v_head_dim),
      n_layers_(n_layers), first_id_(take_ids(n_layers)) {
    k_.resize(size_t(n_layers));
    v_.resize(size_t(n_layers));
    for (int32_t l = 0; l < n_layers; ++l) {
        k_[size_t(l)].assign(size_t(n_kv_heads) * size_t(n_ctx) * size_t(head_dim), 0.0f);
        v_[size_t(l)].assign(size_t(n_kv_heads) * size_t(n_ctx) * size_t(v_head_dim), 0.0f);
    }
}

uint64_t KvCache::bytes() const {
    return uint64_t(k_.size()) * uint64_t(n_kv_heads_) * uint64_t(n_ctx_) * uint64_t(head_dim_ + v_head_dim_) *
           sizeof(float);
}

void KvCache::store(int32_t layer, int32_t pos0, int32_t n_tokens, const float *k, const float *v) {
    float *kc = keys(layer);
    float *vc = values(layer);
    for (int32_t t = 0; t < n_tokens; ++t) {
        for (int32_t h = 0; h < n_kv_heads_; ++h) {
            const float *ks = k + (int64_t(t) * n_kv_heads_ + h) * head_dim_;
            const float *vs = v + (int64_t(t) * n_kv_heads_ + h) * v_head_dim_;
            std::copy(ks, ks + head_dim_, kc + h * k_stride() + int64_t(pos0 + t) * head_dim_);
            std::copy(vs, vs + v_head_dim_, vc + h * v_stride() + int64_t(pos0 + t) * v_head_dim_);
        }
    }
}

void KvCache::store(Backend &backend, int32_t layer, int32_t pos0, int32_t n_tokens, const float *k, const float *v) {
    for (int32_t h = 0; h < n_kv_heads_; ++h) {
        backend.copy_rows(k + int64_t(h) * head_dim_, int64_t(n_kv_heads_) * head_dim_,
                          keys(layer) + h * k_stride() + int64_t(pos0) * head_dim_, n_tokens, head_dim_);
        backend.copy_rows(v + int64_t(h) * v_head_dim_, int64_t(n_kv_heads_) * v_head_dim_,
                          values(layer) + h * v_stride() + int64_t(pos0) * v_head_dim_, n_tokens, v_head_dim_);
    }
}

void KvCache::contents(int32_t n_past, std::vector<std::span<float>> &out) {
    for (int32_t l = 0; l < n_layers_; ++l)
        for (int32_t h = 0; h < n_kv_heads_; ++h) {
            out.emplace_back(keys(l) + h * k_stride(), size_t(n_past) * size_t(head_dim_));
            out.emplace_back(values(l) + h * v_stride(), size_t(n_past) * size_t(v_head_dim_));
        }
}

void KvCache::renew_ids() { first_id_ = take_ids(n_layers_); }

}  // namespace mst
