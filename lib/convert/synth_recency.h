// `synth --routing-from` for full-attention models: recency heads. A trained model's
// consecutive hidden states agree because its attention carries what the last tokens were
// about; random attention averages the whole context instead, so a synthesized model's
// experts come back only as often as their popularity makes them. Here some attention heads
// of every sparse layer prefer recent positions whatever the content: every token embedding
// gains a constant direction u, those heads' queries and keys read only u, into the
// first dim of a few RoPE pairs whose frequencies turn within tens of tokens, so q_m . k_n
// = S x mean cos((m - n) w_i), which falls with the distance m - n. Their output is then a
// moving average of recent tokens' values, a slowly changing part of the residual stream;
// its weight in o_proj (a gain per sparse layer) is what the calibration moves to match
// the trace's reuse between tokens (convert/synth_routing.h). Routers are made blind to u
// so that the constant itself does not skew popularity. In Qwen3.5-MoE the gated full-
// attention layers (every 4th) get such heads, their output gate held at sigmoid(0) = 1/2 and
// the kernel in the rotated part of each head (partial RoPE); its Gated DeltaNet layers get
// their analogue: key head 0's q and k read only u, so the delta rule keeps a moving average
// of its value heads' v over the last ~100 tokens (the state's decay).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "format/model_config.h"

namespace mst {

// Changes one row (`row` of the tensor, `cols` floats) of a tensor as generated.
using RowTransform = std::function<void(int64_t row, float *values)>;

// The recency construction for one model shape.
class RecencyHeads {
public:
    // nullopt for architectures without it (only qwen3_moe, deepseek_v3 and qwen3_5_moe).
    static std::optional<RecencyHeads> for_config(const ModelConfig &config, uint64_t seed);

    // The change to the tensor `name` ([..][cols]) of model layer `layer` (-1: none), whose
    // recency heads write with o_proj gain `gain` (nullopt: the layer has none); `router`:
    // the tensor is a router, made blind to u. Empty: the tensor is written as generated.
    RowTransform transform(const std::string &name, int32_t layer, int64_t cols, std::optional<float> gain,
                           bool router) const;

    // The RoPE pairs used (for notes and tests).
    const std::vector<int32_t> &pairs() const { return pairs_; }

private:
    // QkNorm: Qwen3-MoE; Gated: Qwen3.5-MoE's gated attention (q_proj rows [query | gate] per
    // head, (1 + w) q_norm / k_norm); Mla: DeepSeek-V3.
    enum class Kind { QkNorm, Gated, Mla } kind_ = Kind::QkNorm;
    std::vector<bool> linear_;     // Gated: the Gated DeltaNet (linear-attention) layers
    int64_t dn_k_heads_ = 0, dn_v_heads_ = 0, dn_k_dim_ = 0, dn_v_dim_ = 0;  // Gated: their shape
    int64_t hidden_ = 0, head_dim_ = 0, n_heads_ = 0;
    int64_t q_lora_ = 0, kv_lora_ = 0, nope_ = 0, rope_ = 0, v_dim_ = 0;  // MLA
    float embedding_gain_ = 0.0f;  // u's weight in a token embedding
    float qk_norm_weight_ = 1.0f;  // QkNorm: q_norm / k_norm weight on the pairs' dims
    float q_a_gain_ = 0.0f, q_b_gain_ = 0.0f;  // Mla: q_a_proj's row 0 reads u, q_b_proj's rope rows read it
    std::vector<float> u_;         // unit direction added to every token embedding
    std::vector<int32_t> pairs_;   // rotary pairs written
    std::vector<int32_t> dims_;    // the first dim of each pair within the rotary part
    int32_t recency_q_heads_ = 1;  // query heads 0.. that are recency heads
};

}  // namespace mst
