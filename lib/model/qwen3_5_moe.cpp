#include "model/qwen3_5_moe.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "model/block_fp8_experts.h"
#include "model/expert_tensors.h"
#include "model/kv_cache.h"
#include "model/linear_attention_state.h"
#include "router/softmax_topk.h"

namespace mst {

std::vector<bool> qwen35_linear_layers(const ModelConfig &c) {
    std::vector<bool> linear(size_t(c.n_layers));
    if (!c.layer_types.empty()) {
        for (size_t l = 0; l < linear.size(); ++l) {
            const std::string &t = c.layer_types[l];
            if (t != "linear_attention" && t != "full_attention")
                fail(MST_ERR_UNSUPPORTED,
                     "{}: layer {} has layer type '{}' (supported: linear_attention, full_attention)", c.model_type, l,
                     t);
            linear[l] = t == "linear_attention";
        }
        return linear;
    }
    int64_t interval = 4;
    if (const auto it = c.raw.find("full_attention_interval"); it != c.raw.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<int64_t>() < 1)
            fail(MST_ERR_BAD_FORMAT,
                 "config.json field 'full_attention_interval' of {} must be a positive integer, not {}", c.model_type,
                 it->dump());
        interval = it->get<int64_t>();
    }
    for (size_t l = 0; l < linear.size(); ++l) linear[l] = (int64_t(l) + 1) % interval != 0;
    return linear;
}

double qwen35_partial_rotary_factor(const ModelConfig &c) {
    const auto present = [](const nlohmann::json &o) {
        return o.is_object() && o.contains("partial_rotary_factor") && !o["partial_rotary_factor"].is_null();
    };
    const bool given = present(c.raw) || (c.raw.contains("rope_parameters") && present(c.raw["rope_parameters"])) ||
                       (c.raw.contains("rope_scaling") && present(c.raw["rope_scaling"]));
    return given ? c.partial_rotary_factor : 0.25;
}

namespace {

class HybridState final : public ModelState {
public:
    HybridState(int32_t n_full, int32_t n_linear, int32_t n_ctx, const ModelConfig &c, const GatedDeltaNetShape &s)
        : cache(n_full, n_ctx, int32_t(c.n_kv_heads), int32_t(c.head_dim), int32_t(c.head_dim)),
          linear(n_linear, s.conv_state_elements(), s.recurrent_state_elements()) {}
    uint64_t bytes() const override { return cache.bytes() + linear.bytes(); }
    std::vector<std::span<float>> contents(int32_t n_past) override {
        std::vector<std::span<float>> out;
        cache.contents(n_past, out);
        linear.contents(n_past, out);
        return out;
    }
    void restored(int32_t n_past) override {
        cache.renew_ids();
        linear.restored(n_past);
    }
    bool rewindable() const override { return false; }
    KvCache cache;
    LinearAttentionState linear;
};

// Qwen3.5 always renormalises the kept experts' weights; Qwen3-Next does unless
// norm_topk_prob says otherwise (its reference default is true, the generic parser's false).
bool renormalizes(const ModelConfig &c, Qwen35Moe::Flavor flavor) {
    if (flavor == Qwen35Moe::Flavor::Qwen3_5) return true;
    const auto it = c.raw.find("norm_topk_prob");
    return it == c.raw.end() || it->is_null() ? true : c.norm_topk_prob;
}

// Qwen's FP8 releases store each expert's projections as F8_E4M3 (with block scales).
bool stores_fp8_experts(const Checkpoint &checkpoint, const std::string &prefix) {
    for (const char *name : {".0.gate_proj.weight", ".gate_up_proj"})
        if (const TensorInfo *t = checkpoint.find(prefix + name); t != nullptr && t->dtype == DType::F8_E4M3)
            return true;
    return false;
}

bool has_fp8_part(const std::vector<ExpertLayout> &layer) {
    for (const ExpertLayout &e : layer)
        for (const ExpertMatrix &m : e.parts)
            if (m.dtype == DType::F8_E4M3) return true;
    return false;
}

bool layer_is_sparse(const ModelConfig &c, Qwen35Moe::Flavor flavor, int64_t layer) {
    if (flavor == Qwen35Moe::Flavor::Qwen3_5) return true;  // every Qwen3.5 layer is MoE
    const bool dense_listed =
        std::find(c.mlp_only_layers.begin(), c.mlp_only_layers.end(), layer) != c.mlp_only_layers.end();
    return !dense_listed && c.n_experts > 0 && (layer + 1) % std::max<int64_t>(c.decoder_sparse_step, 1) == 0;
}

}  // namespace

Qwen35Moe::Qwen35Moe(const ModelBuildContext &ctx, Flavor flavor)
    : config_(ctx.config),
      flavor_(flavor),
      backend_(ctx.backend),
      fp8_block_(fp8_block_size(ctx.config)),
      weights_(ctx.checkpoint, ctx.record_weight_use, fp8_block_) {
    const ModelConfig &c = config_;
    const int64_t H = c.hidden_size, V = c.vocab_size, hd = c.head_dim;
    if (const auto act = c.raw.find("hidden_act"); act != c.raw.end() && act->is_string() && *act != "silu")
        fail(MST_ERR_UNSUPPORTED, "{}: hidden_act '{}' is not supported (silu)", c.model_type, act->get<std::string>());
    deltanet_shape_ = gated_deltanet_shape(c);
    const std::vector<bool> linear = qwen35_linear_layers(c);

    // Qwen3.5 checkpoints of the multimodal class keep the text model under
    // model.language_model. (beside model.visual., which is not read).
    const std::string root =
        weights_.has("model.language_model.embed_tokens.weight") ? "model.language_model." : "model.";
    embed_ = weights_.load(root + "embed_tokens.weight", {V, H});
    final_norm_ = weights_.load(root + "norm.weight", {H});
    lm_head_ = c.tie_word_embeddings ? embed_ : weights_.load("lm_head.weight", {V, H});

    attention_shape_ = GqaShape{int32_t(c.n_heads), int32_t(c.n_kv_heads), int32_t(hd), float(c.rms_norm_eps), 1.0f};
    renormalize_ = renormalizes(c, flavor);
    const DeltaNetLayout layout =
        flavor == Flavor::Qwen3Next ? DeltaNetLayout::FusedPerKeyHead : DeltaNetLayout::Separate;

    std::vector<std::vector<ExpertLayout>> expert_layouts(size_t(c.n_layers));
    layers_.resize(size_t(c.n_layers));
    for (int64_t l = 0; l < c.n_layers; ++l) {
        Layer &L = layers_[size_t(l)];
        const std::string p = fmt::format("{}layers.{}.", root, l);
        L.input_norm = weights_.load(p + "input_layernorm.weight", {H});
        L.post_attention_norm = weights_.load(p + "post_attention_layernorm.weight", {H});
        L.linear = linear[size_t(l)];
        if (L.linear) {
            L.slot = n_linear_++;
            L.deltanet = load_gated_deltanet(weights_, p + "linear_attn.", deltanet_shape_, H, layout);
        } else {
            L.slot = n_full_++;
            L.attention = load_gated_attention(weights_, p + "self_attn.", attention_shape_, H, c.attention_bias);
        }

        L.sparse = layer_is_sparse(c, flavor, l);
        if (L.sparse) {
            if (c.n_experts < 1 || c.n_experts_per_tok < 1 || c.moe_intermediate_size < 1)
                fail(MST_ERR_BAD_FORMAT,
                     "{} config needs num_experts, num_experts_per_tok and moe_intermediate_size >= 1", c.model_type);
            // The router decides which experts run: kept at full precision.
            L.router = weights_.load(p + "mlp.gate.weight", {c.n_experts, H}, WeightUse::KeepStored);
            expert_layouts[size_t(l)] = ctx.expert_layouts(l, [&] {
                const std::string prefix = p + "mlp.experts";
                return stores_fp8_experts(ctx.checkpoint, prefix)
                           ? locate_block_fp8_experts(ctx.checkpoint, prefix, c.n_experts, H, c.moe_intermediate_size,
                                                      fp8_block_)
                           : locate_experts(ctx.checkpoint, prefix, c.n_experts, H, c.moe_intermediate_size);
            });
            if (has_fp8_part(expert_layouts[size_t(l)])) {
                check_block_fp8_experts(expert_layouts[size_t(l)], c.n_experts, H, c.moe_intermediate_size,
                                        fp8_block_, ctx.checkpoint.dir(), l);
                expert_fn_ = block_fp8_swiglu_expert(fp8_block_);
            } else {
                check_swiglu_experts(expert_layouts[size_t(l)], c.n_experts, H, c.moe_intermediate_size,
                                     ctx.checkpoint.dir(), l);
            }
            if (const int64_t I = c.shared_expert_intermediate_size; I > 0) {
                L.shared.gate = weights_.load(p + "mlp.shared_expert.gate_proj.weight", {I, H});
                L.shared.up = weights_.load(p + "mlp.shared_expert.up_proj.weight", {I, H});
                L.shared.down = weights_.load(p + "mlp.shared_expert.down_proj.weight", {H, I});
                // One row scaling the whole shared expert: kept at full precision.
                L.shared_gate = weights_.load(p + "mlp.shared_expert_gate.weight", {1, H}, WeightUse::KeepStored);
            }
        } else {
            const int64_t I = c.intermediate_size;
            if (I < 1)
                fail(MST_ERR_BAD_FORMAT, "{} config needs intermediate_size >= 1 for dense layer {}", c.model_type, l);
            L.mlp.gate = weights_.load(p + "mlp.gate_proj.weight", {I, H});
            L.mlp.up = weights_.load(p + "mlp.up_proj.weight", {I, H});
            L.mlp.down = weights_.load(p + "mlp.down_proj.weight", {H, I});
        }
    }
    const double rotary = double(hd) * qwen35_partial_rotary_factor(c);
    rope_ = make_rope_table(c, int32_t(rotary));

    // Sizes. Dense parameters are the tensors this model reads: the text model's, not the
    // vision tower's or the multi-token-prediction head's that real checkpoints also carry.
    for (const auto &layer : expert_layouts) {
        if (layer.empty()) continue;
        ++sizes_.n_moe_layers;
        for (const ExpertLayout &e : layer) {
            sizes_.expert_bytes_total += e.nbytes();
            sizes_.expert_bytes_each = std::max(sizes_.expert_bytes_each, e.nbytes());
            for (const ExpertMatrix &m : e.parts)
                if (m.quantizable) sizes_.n_params_total += uint64_t(m.rows * m.cols);  // not FP8 scales
        }
    }
    sizes_.n_params_per_expert = uint64_t(3 * c.moe_intermediate_size * H);
    for (const TensorInfo &t : ctx.checkpoint.tensors()) {
        const bool text = t.name.rfind(root, 0) == 0 && t.name.rfind("model.visual.", 0) != 0;
        const bool head = t.name == "lm_head.weight" && !c.tie_word_embeddings;
        const bool scales = t.name.size() > 10 && t.name.compare(t.name.size() - 10, 10, "_scale_inv") == 0;
        if ((text || head) && !scales && t.name.find(".mlp.experts.") == std::string::npos)
            sizes_.n_params_dense += uint64_t(t.numel());
    }
    sizes_.n_params_total += sizes_.n_params_dense;
    sizes_.resident_bytes = weights_.bytes();
    // Only the full-attention layers keep per-token keys and values; the linear layers'
    // state has a fixed size whatever the context.
    sizes_.kv_cache_bytes_per_token = uint64_t(2 * c.n_kv_heads * c.head_dim) * sizeof(float) * uint64_t(n_full_);
    sizes_.kv_cache_full_bytes_per_token = sizes_.kv_cache_bytes_per_token;
    // Double-buffered (see linear_attention_state.h), so twice the state itself.
    sizes_.recurrent_state_bytes = 2 * uint64_t(n_linear_) *
                                   uint64_t(deltanet_shape_.conv_state_elements() + deltanet_shape_.recurrent_state_elements()) *
                                   sizeof(float);
    experts_ = ctx.make_expert_store(std::move(expert_layouts));
}

std::unique_ptr<ModelState> Qwen35Moe::create_state(int32_t n_ctx) const {
    return std::make_unique<HybridState>(n_full_, n_linear_, n_ctx, config_, deltanet_shape_);
}

void Qwen35Moe::feed_forward(const Layer &L, int32_t index, const float *h, int64_t n, const ForwardOptions &options,
                             float *y, ExpertIoStats &io) {
    const int32_t k = options.experts_per_token;
    const int64_t H = config_.hidden_size;
    if (!L.sparse) {
        swiglu_mlp(backend_, L.mlp, h, n, y);
        return;
    }
    LayerRouting routing;
    routing.n_layers = layers_.size();
    routing.is_sparse = [this](size_t l) { return layers_[l].sparse; };
    routing.route = [this](size_t l, const float *x, int64_t rows, int32_t top_k, int32_t *ids, float *weights) {
        const int32_t E = int32_t(config_.n_experts);
        std::vector<float> logits(size_t(rows * E));
        backend_.matmul(layers_[l].router, x, logits.data(), rows);
        route_softmax_topk(logits.data(), rows, E, top_k, renormalize_, ids, weights);
    };
    routing.renormalized = renormalize_;
    routing.trace = options.route_trace;
    sparse_feed_forward(backend_, *experts_, routing, size_t(index), h, n, H, k, &options.budget,
                        options.budget_stats, y, io, expert_fn_);
    if (L.shared.gate.data == nullptr) return;

    std::vector<float> shared(size_t(n * H)), gate(static_cast<size_t>(n));
    swiglu_mlp(backend_, L.shared, h, n, shared.data());
    backend_.matmul(L.shared_gate, h, gate.data(), n);
    backend_.sigmoid_mul(shared.data(), gate.data(), n, H, 1);
    for (int64_t i = 0; i < n * H; ++i) y[i] += shared[size_t(i)];
}

void Qwen35Moe::forward(ModelState &state, int32_t n_past, std::span<const int32_t> tokens,
                        const ForwardOptions &options, float *logits, ExpertIoStats &io) {
    const ModelConfig &c = config_;
    auto &s = static_cast<HybridState &>(state);
    s.linear.begin(n_past);  // refuses a position the recurrent state cannot continue from
    const int64_t n = int64_t(tokens.size()), H = c.hidden_size;
    const float eps = float(c.rms_norm_eps);

    std::vector<float> x(size_t(n * H)), h(size_t(n * H)), y(size_t(n * H));
    const size_t row_bytes = size_t(dtype_row_bytes(embed_.dtype, H));
    for (int64_t t = 0; t < n; ++t)
        convert_to_f32(embed_.dtype, static_cast<const uint8_t *>(embed_.data) + size_t(tokens[size_t(t)]) * row_bytes,
                       x.data() + t * H, size_t(H));

    for (int64_t l = 0; l < c.n_layers; ++l) {
        const Layer &L = layers_[size_t(l)];
        backend_.rms_norm(x.data(), L.input_norm, 1.0f, eps, h.data(), n, H);
        if (L.linear) {
            gated_deltanet(backend_, L.deltanet, deltanet_shape_, h.data(), n, s.linear.conv_in(L.slot),
                           s.linear.conv_out(L.slot), s.linear.recurrent_in(L.slot), s.linear.recurrent_out(L.slot),
                           y.data());
        } else {
            gated_attention(backend_, L.attention, attention_shape_, rope_, s.cache, L.slot, h.data(), n, n_past,
                            y.data());
        }
        for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];

        backend_.rms_norm(x.data(), L.post_attention_norm, 1.0f, eps, h.data(), n, H);
        feed_forward(L, int32_t(l), h.data(), n, options, y.data(), io);
        for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
    }

    const int64_t first_row = options.all_logits ? 0 : n - 1;
    const int64_t n_rows = n - first_row;
    backend_.rms_norm(x.data() + first_row * H, final_norm_, 1.0f, eps, h.data(), n_rows, H);
    backend_.matmul(lm_head_, h.data(), logits, n_rows);
    s.linear.commit(n_past, int32_t(n));
}

}  // namespace mst
