#include "model/latent_kv_cache.h"

namespace mst {

LatentKvCache::LatentKvCache(int32_t n_layers, int32_t n_ctx, int32_t latent_dim, int32_t rope_dim)
    : n_ctx_(n_ctx), latent_dim_(latent_dim), rope_dim_(rope_dim) {
    rows_.resize(size_t(n_layers));
    for (auto &layer : rows_) layer.assign(size_t(n_ctx) * size_t(row_dim()), 0.0f);
}

uint64_t LatentKvCache::bytes() const {
    return uint64_t(rows_.size()) * uint64_t(n_ctx_) * uint64_t(row_dim()) * sizeof(float);
}

void LatentKvCache::contents(int32_t n_past, std::vector<std::span<float>> &out) {
    for (auto &layer : rows_) out.emplace_back(layer.data(), size_t(n_past) * size_t(row_dim()));
}

}  // namespace mst
