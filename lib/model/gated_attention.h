// Gated full attention (Qwen3.5, Qwen3-Next): grouped-query attention whose q_proj also
// yields a per-element output gate (each head's rows are [query | gate]), with per-head
// (1 + w) RMSNorm on q and k and RoPE on the first part of each head only. The output is
// multiplied by sigmoid(gate) before o_proj.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "model/gqa_attention.h"
#include "model/kv_cache.h"
#include "model/resident_weights.h"
#include "model/rope_frequencies.h"

namespace mst {

struct GatedAttentionWeights {
    WeightView q_gate;          // [n_heads * 2 * head_dim][H]: per head, head_dim query rows then head_dim gate rows
    WeightView k, v;            // [n_kv_heads * head_dim][H]
    WeightView o;               // [H][n_heads * head_dim]
    WeightView q_norm, k_norm;  // [head_dim], applied with shape.norm_weight_offset (1: (1 + w))
    std::vector<float> q_gate_bias, k_bias, v_bias, o_bias;  // empty without attention_bias
};

// Load from `prefix` ("model.layers.3.self_attn.").
GatedAttentionWeights load_gated_attention(ResidentWeights &weights, const std::string &prefix, const GqaShape &shape,
                                           int64_t hidden, bool bias);

// out [n][hidden] for h [n][hidden] at positions pos0..., keeping keys and values in
// `cache` slot `cache_layer`.
void gated_attention(Backend &backend, const GatedAttentionWeights &w, const GqaShape &shape, const RopeTable &rope,
                     KvCache &cache, int32_t cache_layer, const float *h, int64_t n_tokens, int32_t pos0, float *out);

}  // namespace mst
