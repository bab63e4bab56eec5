// Multi-head latent attention (DeepSeek-V2/V3, Kimi K2). Queries come from a low-rank
// projection (q_a, RMSNorm, q_b) or a plain q_proj; keys and values come from one
// normalised latent per token, expanded per head by kv_b_proj, plus a roped key part
// shared by all heads. Only the latent and the shared key are cached (LatentKvCache).
//
// Two exact ways to attend over that cache:
// - expanded: kv_b_proj turns every cached latent into per-head keys and values, then
//   ordinary attention (cheapest for a prefill, whose queries share the expansion);
// - absorbed: kv_b_proj's key rows are folded into each query and its value rows applied
//   after attention, so the heads attend over the latent rows directly (cheapest for a
//   decode step: its cost does not grow with context length times kv_b's size).
// The automatic choice takes whichever costs fewer multiply-adds for the call.
#pragma once

#include <cstdint>
#include <span>

#include "backends/backend.h"
#include "format/model_config.h"
#include "model/latent_kv_cache.h"
#include "model/linear.h"
#include "model/rope_frequencies.h"

namespace mst {

struct MlaShape {
    int32_t n_heads = 0;
    int32_t q_lora_rank = 0;  // 0: a plain q_proj
    int32_t kv_lora_rank = 0;
    int32_t qk_nope_dim = 0;
    int32_t qk_rope_dim = 0;
    int32_t v_head_dim = 0;
    float norm_eps = 1e-6f;
    float softmax_scale = 1.0f;
    int32_t qk_head_dim() const { return qk_nope_dim + qk_rope_dim; }
};

struct MlaWeights {
    Linear q;              // q_proj [heads * qk][hidden], when q_lora_rank == 0
    Linear q_a, q_b;       // [q_lora][hidden], [heads * qk][q_lora]
    WeightView q_a_norm;   // [q_lora]
    Linear kv_a;           // kv_a_proj_with_mqa [kv_lora + rope][hidden]
    WeightView kv_a_norm;  // [kv_lora]
    WeightView kv_b;       // [heads * (nope + v)][kv_lora], a float type: it is sliced per head
    Linear o;              // [hidden][heads * v]
};

enum class MlaPath { Automatic, Expanded, Absorbed };

// The path Automatic takes for n_tokens queries at positions pos0...
MlaPath choose_mla_path(const MlaShape &shape, int64_t n_tokens, int32_t pos0);

// The reference's softmax scale: qk_head_dim^-0.5, times mscale^2 with
// mscale = 0.1 * mscale_all_dim * ln(factor) + 1 when the RoPE scaling (any type but
// default) sets mscale_all_dim and factor > 1.
float mla_softmax_scale(const ModelConfig &config, int32_t qk_head_dim);

// out [n][hidden] = o_proj(attention(h [n][hidden])) for tokens at positions pos0...,
// storing their latents in `cache` for `layer`. The RoPE table rotates the
// qk_rope_dim part (interleaved pairs for DeepSeek's layout).
void mla_attention(Backend &backend, const MlaWeights &w, const MlaShape &shape, const RopeTable &rope,
                   LatentKvCache &cache, int32_t layer, const float *h, int64_t n_tokens, int32_t pos0, float *out,
                   MlaPath path = MlaPath::Automatic);

// One sequence's rows in a batch of several: rows [row0, row0 + n_tokens) of h and out,
// at positions pos0..., their latents kept in `cache`.
struct LatentSegment {
    LatentKvCache *cache = nullptr;
    int64_t row0 = 0;
    int64_t n_tokens = 0;
    int32_t pos0 = 0;
};

// mla_attention over the rows of several sequences: the projections run once over all
// n_rows rows (segments cover them in order), each segment attends over its own cache by
// the path Automatic picks for it. A row's result is what the one-sequence call gives it.
void mla_attention_segments(Backend &backend, const MlaWeights &w, const MlaShape &shape, const RopeTable &rope,
                            std::span<const LatentSegment> segments, int32_t layer, const float *h, int64_t n_rows,
                            float *out);

}  // namespace mst
