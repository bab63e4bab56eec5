// One decode step of attention as the Vulkan step tests run it: the q, k and v products
// of x, the KV append at `pos` through the backend (KvCache::store), and the attention
// over the cache, in one batch when `batch` is set (then the sync at its end is the one
// wait a device backend makes). Heads come from the weights' rows / head_dim.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/backend.h"
#include "model/kv_cache.h"

namespace mst::test {

inline std::vector<float> kv_attention_step(Backend &b, KvCache &cache, int32_t pos, const std::vector<float> &x,
                                            const WeightView &wq, const WeightView &wk, const WeightView &wv,
                                            int32_t head_dim, bool batch = true) {
    const int32_t heads = int32_t(wq.rows / head_dim), kv_heads = int32_t(wk.rows / head_dim);
    std::vector<float> q(size_t(heads * head_dim)), k(size_t(kv_heads * head_dim)), v(size_t(kv_heads * head_dim)),
        out(size_t(heads * head_dim));
    BackendBatch scope(b, batch);
    b.matmul(wq, x.data(), q.data(), 1);
    b.matmul(wk, x.data(), k.data(), 1);
    b.matmul(wv, x.data(), v.data(), 1);
    cache.store(b, 0, pos, 1, k.data(), v.data());
    AttentionParams p;
    p.n_tokens = 1;
    p.n_heads = heads;
    p.n_kv_heads = kv_heads;
    p.head_dim = head_dim;
    p.v_head_dim = head_dim;
    p.pos0 = pos;
    p.kv_stride = cache.k_stride();
    p.scale = 0.35f;
    p.cache_id = cache.id(0);
    b.attention(q.data(), cache.keys(0), cache.values(0), out.data(), p);
    b.sync();
    return out;
}

}  // namespace mst::test
