// The decoder stack Qwen3-MoE, Mixtral and gpt-oss share: token embeddings; per layer a
// pre-norm grouped-query attention and a pre-norm feed-forward (routed experts streamed
// through the expert store, or a dense SwiGLU MLP), each added to the residual stream;
// a final RMSNorm and the LM head. An architecture derives from it, loads its weights
// into the protected members in its constructor, plugs in its routing and expert
// functions and calls finish().
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/ffn.h"
#include "model/gqa_attention.h"
#include "model/model_registry.h"
#include "model/resident_weights.h"

namespace mst {

class MoeDecoder : public Model {
public:
    std::unique_ptr<ModelState> create_state(int32_t n_ctx) const override;
    void forward(ModelState &state, int32_t n_past, std::span<const int32_t> tokens, const ForwardOptions &options,
                 float *logits, ExpertIoStats &io) override;
    void forward_batch(std::span<const SequenceStep> steps, int32_t experts_per_token, ExpertIoStats &io) override;
    bool batches_sequences() const override { return true; }
    ModelSizes sizes() const override { return sizes_; }
    const ExpertStore &experts() const override { return *experts_; }

protected:
    struct Layer {
        WeightView input_norm, post_attention_norm;
        GqaWeights attention;
        int32_t sliding_window = 0;      // 0 = full attention
        bool sparse = false;             // routed experts, else the dense mlp
        WeightView router;               // [E][H], sparse layers
        std::vector<float> router_bias;  // [E]; empty when the router has none
        SwigluWeights mlp;               // dense layers
    };

    // Turns n_tokens rows of router logits [n][n_experts] into k expert ids and weights each.
    using RouterFn = std::function<void(const float *logits, int64_t n_tokens, int32_t n_experts, int32_t k,
                                        int32_t *ids, float *weights)>;

    // Reads model.embed_tokens.weight, model.norm.weight and lm_head.weight (the
    // embeddings when tie_word_embeddings), sizes layers_ and sets up RoPE over the whole
    // head and the attention shape. Throws BAD_FORMAT naming a missing or misshapen tensor.
    explicit MoeDecoder(const ModelBuildContext &ctx);

    // The self-attention weights under `prefix` ("model.layers.N.self_attn."): q/k/v/o
    // projections, all four biases when config attention_bias is set, per-head q/k norms
    // when `qk_norm`, per-head sink logits when `sinks`.
    GqaWeights load_attention(const std::string &prefix, bool qk_norm, bool sinks);

    // Called at the end of the derived constructor: counts sizes (params_per_expert is
    // one routed expert's parameters) and hands the expert layouts to the expert store.
    void finish(const ModelBuildContext &ctx, std::vector<std::vector<ExpertLayout>> expert_layouts,
                uint64_t params_per_expert);

    const ModelConfig config_;
    Backend &backend_;
    ResidentWeights weights_;
    std::vector<Layer> layers_;
    GqaShape attention_shape_;
    RouterFn route_;
    bool routing_renormalized_ = false;  // route_ normalises the kept weights (for budget rules)
    // route_ is route_softmax_topk (renormalising as routing_renormalized_ says): a backend
    // with DeviceRouting may run it in its place.
    bool softmax_topk_routing_ = false;
    ExpertFn expert_fn_;  // empty: SwiGLU experts through Backend::routed_swiglu

private:
    // The forward pass of forward and forward_batch: the steps' rows in order, one
    // residual stream; `trace` sees every sparse layer's routing of all the rows.
    void run(std::span<const SequenceStep> steps, int32_t k, const RouteTrace &trace, ExpertIoStats &io);

    // The layers' routing (router product, optional bias, route_) for sparse_feed_forward.
    LayerRouting layer_routing();

    WeightView embed_, final_norm_, lm_head_;
    RopeTable rope_;
    std::unique_ptr<ExpertStore> experts_;
    ModelSizes sizes_;
};

}  // namespace mst
