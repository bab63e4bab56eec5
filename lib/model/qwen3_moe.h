// Qwen3-MoE (Qwen3-30B-A3B, Qwen3-235B-A22B): GQA with per-head q/k RMSNorm and RoPE,
// softmax top-k routing with optional renormalisation, SwiGLU experts; layers listed in
// mlp_only_layers (or off the decoder_sparse_step grid) use a dense MLP.
#pragma once

#include <memory>
#include <vector>

#include "model/ffn.h"
#include "model/gqa_attention.h"
#include "model/model_registry.h"
#include "model/resident_weights.h"

namespace mst {

class Qwen3Moe final : public Model {
public:
    explicit Qwen3Moe(const ModelBuildContext &ctx);
    std::unique_ptr<ModelState> create_state(int32_t n_ctx) const override;
    void forward(ModelState &state, int32_t n_past, std::span<const int32_t> tokens, const ForwardOptions &options,
                 float *logits, ExpertIoStats &io) override;
    ModelSizes sizes() const override { return sizes_; }
    const ExpertStore &experts() const override { return *experts_; }

private:
    struct Layer {
        WeightView input_norm, post_attention_norm;
        GqaWeights attention;
        bool sparse = false;
        WeightView router;  // [E][H], sparse layers
        SwigluWeights mlp;  // dense layers
    };

    const ModelConfig config_;
    Backend &backend_;
    ResidentWeights weights_;
    WeightView embed_, final_norm_, lm_head_;
    std::vector<Layer> layers_;
    RopeTable rope_;
    GqaShape attention_shape_;
    std::unique_ptr<ExpertStore> experts_;
    ModelSizes sizes_;
};

}  // namespace mst
