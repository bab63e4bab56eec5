// The cache of multi-head latent attention: per layer and position, the normalised KV
// latent (kv_lora_rank values) followed by the roped key part shared by all heads
// (qk_rope_head_dim values), float32, [n_ctx][latent + rope] per layer: the layout
// Backend::latent_attention reads. Keys and values of every head are recomputed from it,
// so it holds (latent + rope) floats per token and layer instead of
// heads * (qk_head_dim + v_head_dim).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace mst {

class LatentKvCache {
public:
    LatentKvCache(int32_t n_layers, int32_t n_ctx, int32_t latent_dim, int32_t rope_dim);

    int32_t n_ctx() const { return n_ctx_; }
    int32_t latent_dim() const { return latent_dim_; }
    int32_t rope_dim() const { return rope_dim_; }
    int64_t row_dim() const { return int64_t(latent_dim_) + rope_dim_; }
    // Position p of `layer` starts at rows(layer) + p * row_dim().
    float *rows(int32_t layer) { return rows_[size_t(layer)].data(); }
    const float *rows(int32_t layer) const { return rows_[size_t(layer)].data(); }
    uint64_t bytes() const;
    // Appends the rows of positions 0..n_past-1 of every layer to `out`.
    void contents(int32_t n_past, std::vector<std::span<float>> &out);

private:
    int32_t n_ctx_, latent_dim_, rope_dim_;
    std::vector<std::vector<float>> rows_;
};

}  // namespace mst
