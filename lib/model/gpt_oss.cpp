#include "model/gpt_oss.h"

#include <fmt/format.h>

#include "core/error.h"
#include "model/gpt_oss_experts.h"
#include "router/topk_softmax.h"

namespace mst {
namespace {

// The reference fixes alpha; the clamp is config swiglu_limit (7 when absent).
constexpr float kSwigluAlpha = 1.702f;
constexpr double kDefaultSwigluLimit = 7.0;

double swiglu_limit(const ModelConfig &c) {
    const auto it = c.raw.find("swiglu_limit");
    if (it == c.raw.end() || it->is_null()) return kDefaultSwigluLimit;
    if (!it->is_number() || !(it->get<double>() > 0.0))
        fail(MST_ERR_BAD_FORMAT, "gpt_oss config.json field swiglu_limit must be a positive number, not {}",
             it->dump());
    return it->get<double>();
}

const char *format_name(GptOssExpertFormat f) {
    switch (f) {
        case GptOssExpertFormat::Float: return "float";
        case GptOssExpertFormat::Mxfp4: return "MXFP4";
        case GptOssExpertFormat::SplitGateUp: return "split gate/up";
    }
    return "";
}

// Without layer_types the reference alternates, starting with a sliding-window layer.
bool layer_is_sliding(const ModelConfig &c, int64_t layer) {
    if (c.layer_types.empty()) return layer % 2 == 0;
    const std::string &type = c.layer_types[size_t(layer)];
    if (type == "sliding_attention") return true;
    if (type == "full_attention") return false;
    fail(MST_ERR_UNSUPPORTED, "gpt_oss layer {} has layer type '{}' (supported: sliding_attention, full_attention)",
         layer, type);
}

}  // namespace

GptOss::GptOss(const ModelBuildContext &ctx) : MoeDecoder(ctx) {
    const ModelConfig &c = config_;
    const int64_t H = c.hidden_size, E = c.n_experts, I = c.moe_intermediate_size;
    if (E < 1 || c.n_experts_per_tok < 1 || I < 1)
        fail(MST_ERR_BAD_FORMAT,
             "gpt_oss config needs num_local_experts, num_experts_per_tok and intermediate_size >= 1");
    const float limit = float(swiglu_limit(c));

    std::vector<std::vector<ExpertLayout>> expert_layouts(size_t(c.n_layers));
    GptOssExpertFormat format = GptOssExpertFormat::Float;
    for (int64_t l = 0; l < c.n_layers; ++l) {
        Layer &L = layers_[size_t(l)];
        const std::string p = fmt::format("model.layers.{}.", l);
        L.input_norm = weights_.load(p + "input_layernorm.weight", {H});
        L.post_attention_norm = weights_.load(p + "post_attention_layernorm.weight", {H});
        L.attention = load_attention(p + "self_attn.", false, true);
        if (layer_is_sliding(c, l)) {
            if (c.sliding_window < 1)
                fail(MST_ERR_BAD_FORMAT,
                     "gpt_oss layer {} is a sliding_attention layer but config sliding_window is unset", l);
            L.sliding_window = int32_t(c.sliding_window);
        }
        L.sparse = true;
        // The router decides which experts run: kept at full precision.
        L.router = weights_.load(p + "mlp.router.weight", {E, H}, WeightUse::KeepStored);
        L.router_bias = weights_.load_f32(p + "mlp.router.bias", {E});
        expert_layouts[size_t(l)] = ctx.expert_layouts(
            l, [&] { return locate_gpt_oss_experts(ctx.checkpoint, p + "mlp.experts", E, H, I).layouts; });
        // The parts say the format, wherever they came from (a packed file has no names).
        const GptOssExpertFormat layer_format =
            check_gpt_oss_experts(expert_layouts[size_t(l)], E, H, I, ctx.checkpoint.dir(), l);
        // One expert function serves every layer, so one layer in another format is an error.
        if (l > 0 && layer_format != format)
            fail(MST_ERR_BAD_FORMAT, "gpt_oss layer {} stores its experts as {} but layer 0 as {}", l,
                 format_name(layer_format), format_name(format));
        format = layer_format;
    }
    route_ = route_topk_softmax;
    routing_renormalized_ = true;  // the softmax over the kept logits sums to one
    expert_fn_ = gpt_oss_expert_fn(format, kSwigluAlpha, limit);
    finish(ctx, std::move(expert_layouts), uint64_t(H * 2 * I + 2 * I + I * H + H));
}

}  // namespace mst
