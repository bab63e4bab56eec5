// Qwen3.5 MoE (qwen3_5_moe, its text model qwen3_5_moe_text) and Qwen3-Next (qwen3_next):
// hybrid decoders where most layers are Gated DeltaNet linear attention and every
// few (layer_types) are gated full attention, with (1 + w) RMSNorms, partial RoPE, and
// routed experts plus a shared expert behind a sigmoid gate. The two differ only in how
// checkpoints store the linear-attention input projections, in Qwen3-Next's optional
// dense layers and norm_topk_prob, and in Qwen3.5's multimodal wrapper (text weights under
// model.language_model., vision weights ignored); one class serves both. Qwen's FP8
// releases (quantization_config fp8, 128x128 weight_block_size, BF16 weight_scale_inv)
// load too: FP8 experts stay FP8 and are computed on directly, FP8 dense projections are
// dequantized to float32 when loaded.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/block_fp8.h"
#include "model/ffn.h"
#include "model/gated_attention.h"
#include "model/gated_deltanet.h"
#include "model/model_registry.h"
#include "model/resident_weights.h"

namespace mst {

// Per layer, whether it is Gated DeltaNet linear attention (else gated full attention):
// layer_types, or the pattern the reference derives from full_attention_interval (default
// 4) when a config has none: every interval-th layer is full attention.
std::vector<bool> qwen35_linear_layers(const ModelConfig &config);

// The share of each head's dims that RoPE rotates: both reference configurations default
// partial_rotary_factor to 0.25, where the generic parser's default is 1.
double qwen35_partial_rotary_factor(const ModelConfig &config);

class Qwen35Moe final : public Model {
public:
    enum class Flavor { Qwen3_5, Qwen3Next };

    Qwen35Moe(const ModelBuildContext &ctx, Flavor flavor);
    // The state holds a KV cache for the full-attention layers and, double-buffered, the
    // convolution and recurrent state of the linear-attention layers (see
    // linear_attention_state.h). A session continues only from where it stopped or from 0.
    std::unique_ptr<ModelState> create_state(int32_t n_ctx) const override;
    void forward(ModelState &state, int32_t n_past, std::span<const int32_t> tokens, const ForwardOptions &options,
                 float *logits, ExpertIoStats &io) override;
    ModelSizes sizes() const override { return sizes_; }
    const ExpertStore &experts() const override { return *experts_; }

private:
    struct Layer {
        WeightView input_norm, post_attention_norm;
        bool linear = false;
        int32_t slot = 0;  // index among the layers of its kind (linear / full attention)
        GatedDeltaNetWeights deltanet;
        GatedAttentionWeights attention;
        bool sparse = false;
        WeightView router;       // [E][H], sparse layers
        SwigluWeights shared;    // the shared expert; gate.data == nullptr when there is none
        WeightView shared_gate;  // [1][H]
        SwigluWeights mlp;       // dense layers
    };

    void feed_forward(const Layer &layer, int32_t index, const float *h, int64_t n, const ForwardOptions &options,
                      float *y, ExpertIoStats &io);

    const ModelConfig config_;
    const Flavor flavor_;
    Backend &backend_;
    // Qwen's FP8 releases: projections and experts F8_E4M3 with block scales.
    const Fp8BlockSize fp8_block_;
    ResidentWeights weights_;
    ExpertFn expert_fn_;  // the block-FP8 expert when some layer's experts are FP8; else empty (SwiGLU)
    WeightView embed_, final_norm_, lm_head_;
    std::vector<Layer> layers_;
    int32_t n_linear_ = 0, n_full_ = 0;
    GatedDeltaNetShape deltanet_shape_;
    GqaShape attention_shape_;
    RopeTable rope_;
    bool renormalize_ = true;
    std::unique_ptr<ExpertStore> experts_;
    ModelSizes sizes_;
};

}  // namespace mst
