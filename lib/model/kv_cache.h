// Keys and values of every past position, per layer: [kv_head][n_ctx][head_dim] float32,
// the layout Backend::attention reads (kv_stride = n_ctx * head_dim).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "backends/backend.h"

namespace mst {

class KvCache {
public:
    KvCache(int32_t n_layers, int32_t n_ctx, int32_t n_kv_heads, int32_t head_dim, int32_t v_head_dim);
    // A copy would share the ids of the original (AttentionParams::cache_id).
    KvCache(const KvCache &) = delete;
    KvCache &operator=(const KvCache &) = delete;

    int32_t n_ctx() const { return n_ctx_; }
    float *keys(int32_t layer) { return k_[size_t(layer)].data(); }
    float *values(int32_t layer) { return v_[size_t(layer)].data(); }
    int64_t k_stride() const { return int64_t(n_ctx_) * head_dim_; }
    int64_t v_stride() const { return int64_t(n_ctx_) * v_head_dim_; }
    uint64_t bytes() const;
    // AttentionParams::cache_id of a layer: unique in the process, never reused. Valid
    // because positions are written only by store(), just before the attention that reads them.
    uint64_t id(int32_t layer) const { return first_id_ + uint64_t(layer); }

    // Copy n_tokens rows of k [n][n_kv_heads][head_dim] and v into positions pos0...
    void store(int32_t layer, int32_t pos0, int32_t n_tokens, const float *k, const float *v);
    // The same through backend ops (Backend::copy_rows, one per head), so that inside a
    // batch the rows go from the device's k and v to its copy of the cache without a wait.
    void store(Backend &backend, int32_t layer, int32_t pos0, int32_t n_tokens, const float *k, const float *v);

    // Appends the keys and values of positions 0..n_past-1 (per layer, per head, keys then
    // values) to `out`.
    void contents(int32_t n_past, std::vector<std::span<float>> &out);
    // Takes fresh ids after positions were overwritten other than by store() (a restored
    // session), so that no device copy of the old rows is taken for the new ones.
    void renew_ids();

private:
    int32_t n_ctx_, n_kv_heads_, head_dim_, v_head_dim_;
    int32_t n_layers_;
    uint64_t first_id_;
    std::vector<std::vector<float>> k_, v_;
};

}  // namespace mst
