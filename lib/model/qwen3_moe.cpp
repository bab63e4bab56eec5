#include "model/qwen3_moe.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "model/expert_tensors.h"
#include "router/softmax_topk.h"

namespace mst {
namespace {

bool layer_is_sparse(const ModelConfig &c, int64_t layer) {
    const bool dense_listed =
        std::find(c.mlp_only_layers.begin(), c.mlp_only_layers.end(), layer) != c.mlp_only_layers.end();
    return !dense_listed && c.n_experts > 0 && (layer + 1) % std::max<int64_t>(c.decoder_sparse_step, 1) == 0;
}

}  // namespace

Qwen3Moe::Qwen3Moe(const ModelBuildContext &ctx) : MoeDecoder(ctx) {
    const ModelConfig &c = config_;
    const int64_t H = c.hidden_size;
    if (c.n_experts > 0 && (c.n_experts_per_tok < 1 || c.moe_intermediate_size < 1))
        fail(MST_ERR_BAD_FORMAT, "qwen3_moe config needs num_experts_per_tok and moe_intermediate_size >= 1");

    std::vector<std::vector<ExpertLayout>> expert_layouts(size_t(c.n_layers));
    for (int64_t l = 0; l < c.n_layers; ++l) {
        Layer &L = layers_[size_t(l)];
        const std::string p = fmt::format("model.layers.{}.", l);
        L.input_norm = weights_.load(p + "input_layernorm.weight", {H});
        L.post_attention_norm = weights_.load(p + "post_attention_layernorm.weight", {H});
        L.attention = load_attention(p + "self_attn.", true, false);
        L.sliding_window = int32_t(c.sliding_window);
        L.sparse = layer_is_sparse(c, l);
        if (L.sparse) {
            // The router decides which experts run: kept at full precision.
            L.router = weights_.load(p + "mlp.gate.weight", {c.n_experts, H}, WeightUse::KeepStored);
            expert_layouts[size_t(l)] = ctx.expert_layouts(l, [&] {
                return locate_experts(ctx.checkpoint, p + "mlp.experts", c.n_experts, H, c.moe_intermediate_size);
            });
            check_swiglu_experts(expert_layouts[size_t(l)], c.n_experts, H, c.moe_intermediate_size,
                                 ctx.checkpoint.dir(), l);
        } else {
            const int64_t I = c.intermediate_size;
            L.mlp.gate = weights_.load(p + "mlp.gate_proj.weight", {I, H});
            L.mlp.up = weights_.load(p + "mlp.up_proj.weight", {I, H});
            L.mlp.down = weights_.load(p + "mlp.down_proj.weight", {H, I});
        }
    }
    routing_renormalized_ = c.norm_topk_prob;
    softmax_topk_routing_ = true;
    route_ = [renormalize = c.norm_topk_prob](const float *logits, int64_t n, int32_t n_experts, int32_t k,
                                              int32_t *ids, float *weights) {
        route_softmax_topk(logits, n, n_experts, k, renormalize, ids, weights);
    };
    finish(ctx, std::move(expert_layouts), uint64_t(3 * c.moe_intermediate_size * H));
}

}  // namespace mst
