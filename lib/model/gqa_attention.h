// Grouped-query attention with optional per-head q/k RMSNorm and projection biases:
// the attention of Qwen3-MoE, Mixtral and (with sinks and windows) gpt-oss.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backends/backend.h"
#include "model/kv_cache.h"
#include "model/rope_frequencies.h"

namespace mst {

struct GqaWeights {
    WeightView q, k, v, o;                          // q: [heads*hd][H], k/v: [kv*hd][H], o: [H][heads*hd]
    std::vector<float> q_bias, k_bias, v_bias, o_bias;  // empty when the model has none
    WeightView q_norm, k_norm;                      // [hd] per-head RMSNorm; data == nullptr when absent
    std::vector<float> sinks;                       // [heads] attention sink logits (gpt-oss); empty when none
};

struct GqaShape {
    int32_t n_heads = 0;
    int32_t n_kv_heads = 0;
    int32_t head_dim = 0;
    float norm_eps = 1e-6f;
    float norm_weight_offset = 0.0f;  // 1 for (1 + w) norms
    int32_t sliding_window = 0;       // > 0: a query sees only the last sliding_window positions
};

// out [n][hidden] = o_proj(attention(h [n][hidden])) for tokens at positions pos0...,
// storing their keys and values in `cache` for `layer`.
void gqa_attention(Backend &backend, const GqaWeights &w, const GqaShape &shape, const RopeTable &rope,
                   KvCache &cache, int32_t layer, const float *h, int64_t n_tokens, int32_t pos0, float *out);

// The same with the layer's input RMSNorm first: h = rms_norm(x, input_norm, eps) (h, [n][hidden],
// is scratch the caller provides), in the same backend batch as the projections.
void gqa_attention_normed(Backend &backend, const GqaWeights &w, const GqaShape &shape, const RopeTable &rope,
                          KvCache &cache, int32_t layer, const float *x, const WeightView &input_norm, float eps,
                          float *h, int64_t n_tokens, int32_t pos0, float *out);

// One sequence's rows in a batch of several: rows [row0, row0 + n_tokens) of h and out,
// at positions pos0..., their keys and values kept in `cache`.
struct AttentionSegment {
    KvCache *cache = nullptr;
    int64_t row0 = 0;
    int64_t n_tokens = 0;
    int32_t pos0 = 0;
};

// gqa_attention_normed over the rows of several sequences: the norm and the projections
// run once over all n_rows rows (segments cover them in order), each segment attends over
// its own cache. A row's result is what the one-sequence call gives it.
void gqa_attention_segments(Backend &backend, const GqaWeights &w, const GqaShape &shape, const RopeTable &rope,
                            std::span<const AttentionSegment> segments, int32_t layer, const float *x,
                            const WeightView &input_norm, float eps, float *h, int64_t n_rows, float *out);

}  // namespace mst
