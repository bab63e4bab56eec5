// DeepSeek-V3 / Kimi K2 (model_type deepseek_v3 or kimi_k2; Kimi K2.5's text model is the
// same): multi-head latent attention with a compressed KV cache (mla_attention.h), YaRN
// RoPE with its softmax-scale correction, the first first_k_dense_replace layers dense,
// then MoE layers with sigmoid group-limited routing (sigmoid_group_topk.h) over streamed
// experts plus always-on shared experts. Weights may be bf16 or FP8 E4M3 with 128x128
// block scales; FP8 projections stay FP8 in memory, resident and streamed alike. Routed
// experts may also be compressed-tensors pack-quantized INT4 / INT8 (Kimi K2.5:
// packed_int_experts.h), streamed and computed on as stored. Kimi K2.5's multimodal
// wrapper (model_type kimi_k25) keeps this model under "language_model." beside its
// vision tower, which is not read.
//
// Config fields read from raw (transformers' DeepseekV3Config defaults when absent):
// q_lora_rank (null: plain q_proj), kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim,
// v_head_dim (these five have no default here), n_group (8), topk_group (4),
// routed_scaling_factor (2.5), first_k_dense_replace (3), norm_topk_prob (true),
// n_shared_experts (1), rope_interleave (true).
#pragma once

#include <memory>
#include <vector>

#include "format/compressed_tensors.h"
#include "model/ffn.h"
#include "model/latent_kv_cache.h"
#include "model/linear.h"
#include "model/mla_attention.h"
#include "model/model_registry.h"
#include "model/resident_weights.h"
#include "router/sigmoid_group_topk.h"

namespace mst {

// The architecture's settings, parsed and checked from a config (MST_ERR_BAD_FORMAT
// naming the field, MST_ERR_UNSUPPORTED for a routing or quantization moestream lacks).
struct DeepseekV3Settings {
    MlaShape mla;
    int64_t first_dense_layers = 0;
    int64_t shared_intermediate = 0;  // 0: no shared experts
    bool rope_interleave = true;
    GroupTopkParams routing;  // k is the model's own top-k
    Fp8BlockSize fp8_block;
    std::optional<CompressedTensorsConfig> compressed;  // a compressed-tensors quantization_config

    // KV cache bytes per token over all layers: the latent cache this model keeps, and
    // what full per-head float32 keys and values would take.
    uint64_t latent_kv_bytes_per_token(int64_t n_layers) const;
    uint64_t full_kv_bytes_per_token(int64_t n_layers) const;
};
DeepseekV3Settings deepseek_v3_settings(const ModelConfig &config);

class DeepseekV3 final : public Model {
public:
    explicit DeepseekV3(const ModelBuildContext &ctx);
    std::unique_ptr<ModelState> create_state(int32_t n_ctx) const override;
    void forward(ModelState &state, int32_t n_past, std::span<const int32_t> tokens, const ForwardOptions &options,
                 float *logits, ExpertIoStats &io) override;
    void forward_batch(std::span<const SequenceStep> steps, int32_t experts_per_token, ExpertIoStats &io) override;
    bool batches_sequences() const override { return true; }
    ModelSizes sizes() const override { return sizes_; }
    const ExpertStore &experts() const override { return *experts_; }

private:
    struct Layer {
        WeightView input_norm, post_attention_norm;
        MlaWeights attention;
        bool sparse = false;
        WeightView router;                   // [E][H], sparse layers
        std::vector<float> correction_bias;  // [E] or empty
        SwigluLinear mlp;                    // dense layers; shared experts of sparse ones
        bool has_mlp = false;
    };

    // The forward pass of forward and forward_batch: the steps' rows in order, one
    // residual stream; `trace` sees every sparse layer's routing of all the rows.
    void run(std::span<const SequenceStep> steps, int32_t experts_per_token, const RouteTrace &trace, ExpertIoStats &io);

    const ModelConfig config_;
    const DeepseekV3Settings settings_;
    Backend &backend_;
    ResidentWeights weights_;
    WeightView embed_, final_norm_;
    Linear lm_head_;
    std::vector<Layer> layers_;
    RopeTable rope_;
    ExpertFn expert_fn_;
    std::unique_ptr<ExpertStore> experts_;
    ModelSizes sizes_;
};

}  // namespace mst
