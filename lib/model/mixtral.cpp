#include "model/mixtral.h"

#include <fmt/format.h>

#include "core/error.h"
#include "model/expert_tensors.h"
#include "router/softmax_topk.h"

namespace mst {

Mixtral::Mixtral(const ModelBuildContext &ctx) : MoeDecoder(ctx) {
    const ModelConfig &c = config_;
    const int64_t H = c.hidden_size, E = c.n_experts, I = c.moe_intermediate_size;
    if (E < 1 || c.n_experts_per_tok < 1 || I < 1)
        fail(MST_ERR_BAD_FORMAT,
             "mixtral config needs num_local_experts, num_experts_per_tok and intermediate_size >= 1");

    std::vector<std::vector<ExpertLayout>> expert_layouts(size_t(c.n_layers));
    for (int64_t l = 0; l < c.n_layers; ++l) {
        Layer &L = layers_[size_t(l)];
        const std::string p = fmt::format("model.layers.{}.", l);
        L.input_norm = weights_.load(p + "input_layernorm.weight", {H});
        L.post_attention_norm = weights_.load(p + "post_attention_layernorm.weight", {H});
        L.attention = load_attention(p + "self_attn.", false, false);
        L.sliding_window = int32_t(c.sliding_window);
        L.sparse = true;
        // Published checkpoints keep the Mixtral names; transformers 5 renames the block
        // to `mlp` when it converts them, and may save it so.
        const std::string moe = weights_.has(p + "block_sparse_moe.gate.weight") ? p + "block_sparse_moe" : p + "mlp";
        // The router decides which experts run: kept at full precision.
        L.router = weights_.load(moe + ".gate.weight", {E, H}, WeightUse::KeepStored);
        expert_layouts[size_t(l)] = ctx.expert_layouts(l, [&] {
            return locate_experts(ctx.checkpoint, moe + ".experts", E, H, I, ExpertTensorNames{"w1", "w3", "w2"});
        });
        check_swiglu_experts(expert_layouts[size_t(l)], E, H, I, ctx.checkpoint.dir(), l);
    }
    routing_renormalized_ = true;
    softmax_topk_routing_ = true;
    route_ = [](const float *logits, int64_t n, int32_t n_experts, int32_t k, int32_t *ids, float *weights) {
        route_softmax_topk(logits, n, n_experts, k, true, ids, weights);
    };
    finish(ctx, std::move(expert_layouts), uint64_t(3 * I * H));
}

}  // namespace mst
