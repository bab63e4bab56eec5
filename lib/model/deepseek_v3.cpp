#include "model/deepseek_v3.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "model/batch_rows.h"
#include "model/block_fp8_experts.h"
#include "model/packed_int_experts.h"

namespace mst {
namespace {

class DeepseekV3State final : public ModelState {
public:
    DeepseekV3State(int32_t n_layers, int32_t n_ctx, const MlaShape &s)
        : cache(n_layers, n_ctx, s.kv_lora_rank, s.qk_rope_dim) {}
    uint64_t bytes() const override { return cache.bytes(); }
    std::vector<std::span<float>> contents(int32_t n_past) override {
        std::vector<std::span<float>> out;
        cache.contents(n_past, out);
        return out;
    }
    void restored(int32_t) override {}  // latent attention keeps no device copy (no cache_id)
    bool rewindable() const override { return true; }
    LatentKvCache cache;
};

// Typed access to the architecture's fields of config.json, with errors naming them.
class RawFields {
public:
    explicit RawFields(const ModelConfig &c) : c_(c) {}

    const nlohmann::json *find(const char *key) const {
        if (!c_.raw.is_object()) return nullptr;
        const auto it = c_.raw.find(key);
        return it == c_.raw.end() || it->is_null() ? nullptr : &*it;
    }
    int64_t integer(const char *key, std::optional<int64_t> fallback, int64_t min, int64_t max) const {
        const nlohmann::json *v = find(key);
        if (v == nullptr) {
            if (!fallback) fail(MST_ERR_BAD_FORMAT, "{} config.json lacks '{}'", c_.model_type, key);
            return *fallback;
        }
        if (!v->is_number_integer())
            fail(MST_ERR_BAD_FORMAT, "config.json field '{}' must be an integer, not {}", key, v->dump());
        const int64_t x = v->get<int64_t>();
        if (x < min || x > max)
            fail(MST_ERR_BAD_FORMAT, "config.json field '{}' = {} is outside [{}, {}]", key, x, min, max);
        return x;
    }
    double number(const char *key, double fallback) const {
        const nlohmann::json *v = find(key);
        if (v == nullptr) return fallback;
        if (!v->is_number() || !std::isfinite(v->get<double>()))
            fail(MST_ERR_BAD_FORMAT, "config.json field '{}' must be a finite number, not {}", key, v->dump());
        return v->get<double>();
    }
    bool boolean(const char *key, bool fallback) const {
        const nlohmann::json *v = find(key);
        if (v == nullptr) return fallback;
        if (!v->is_boolean())
            fail(MST_ERR_BAD_FORMAT, "config.json field '{}' must be true or false, not {}", key, v->dump());
        return v->get<bool>();
    }
    // A string field that, when present, must be `expected`. transformers ignores these
    // and always routes DeepSeek-V3's way; a checkpoint declaring another scheme would be
    // a different model run wrongly, so it is refused instead.
    void require_value(const char *key, const char *expected) const {
        const nlohmann::json *v = find(key);
        if (v != nullptr && !(v->is_string() && v->get<std::string>() == expected))
            fail(MST_ERR_UNSUPPORTED, "{} with {} = {} is not supported (only \"{}\")", c_.model_type, key, v->dump(),
                 expected);
    }

private:
    const ModelConfig &c_;
};

constexpr int64_t kMaxDim = int64_t(1) << 20;

// The compressed-tensors scheme of layer l's routed experts, or nullopt when they are not
// quantized that way. gate, up and down must agree (one expert function computes them).
std::optional<PackedIntScheme> routed_expert_scheme(const DeepseekV3Settings &s, int64_t l) {
    if (!s.compressed) return std::nullopt;
    const auto module = [l](const char *proj) { return fmt::format("model.layers.{}.mlp.experts.0.{}", l, proj); };
    const std::optional<PackedIntScheme> gate = s.compressed->scheme_for(module("gate_proj"));
    for (const char *proj : {"up_proj", "down_proj"})
        if (s.compressed->scheme_for(module(proj)) != gate)
            fail(MST_ERR_UNSUPPORTED, "compressed-tensors: '{}' is quantized differently from '{}'; moestream needs "
                 "one scheme for a routed expert's projections", module(proj), module("gate_proj"));
    return gate;
}

}  // namespace

uint64_t DeepseekV3Settings::latent_kv_bytes_per_token(int64_t n_layers) const {
    return uint64_t(mla.kv_lora_rank + mla.qk_rope_dim) * sizeof(float) * uint64_t(n_layers);
}

uint64_t DeepseekV3Settings::full_kv_bytes_per_token(int64_t n_layers) const {
    return uint64_t(mla.n_heads) * uint64_t(mla.qk_head_dim() + mla.v_head_dim) * sizeof(float) * uint64_t(n_layers);
}

DeepseekV3Settings deepseek_v3_settings(const ModelConfig &c) {
    const RawFields raw(c);
    DeepseekV3Settings s;
    MlaShape &m = s.mla;
    m.n_heads = int32_t(c.n_heads);
    m.q_lora_rank = int32_t(raw.integer("q_lora_rank", 0, 0, kMaxDim));
    m.kv_lora_rank = int32_t(raw.integer("kv_lora_rank", std::nullopt, 1, kMaxDim));
    m.qk_nope_dim = int32_t(raw.integer("qk_nope_head_dim", std::nullopt, 0, kMaxDim));
    m.qk_rope_dim = int32_t(raw.integer("qk_rope_head_dim", std::nullopt, 2, kMaxDim));
    m.v_head_dim = int32_t(raw.integer("v_head_dim", std::nullopt, 1, kMaxDim));
    if (m.qk_rope_dim % 2 != 0)
        fail(MST_ERR_BAD_FORMAT, "config.json field 'qk_rope_head_dim' = {} must be even", m.qk_rope_dim);
    m.norm_eps = float(c.rms_norm_eps);
    m.softmax_scale = mla_softmax_scale(c, m.qk_head_dim());
    s.rope_interleave = raw.boolean("rope_interleave", true);

    if (c.n_experts < 1 || c.n_experts_per_tok < 1 || c.moe_intermediate_size < 1)
        fail(MST_ERR_BAD_FORMAT, "{} config needs n_routed_experts, num_experts_per_tok and moe_intermediate_size >= 1",
             c.model_type);
    s.first_dense_layers = raw.integer("first_k_dense_replace", 3, 0, c.n_layers);
    if (s.first_dense_layers > 0 && c.intermediate_size < 1)
        fail(MST_ERR_BAD_FORMAT, "{} config has dense layers but no intermediate_size", c.model_type);
    s.shared_intermediate = raw.integer("n_shared_experts", 1, 0, kMaxDim) * c.moe_intermediate_size;
    if (raw.integer("moe_layer_freq", 1, 1, c.n_layers) != 1)
        fail(MST_ERR_UNSUPPORTED, "{} with moe_layer_freq other than 1 is not supported", c.model_type);
    raw.require_value("scoring_func", "sigmoid");
    raw.require_value("topk_method", "noaux_tc");

    GroupTopkParams &r = s.routing;
    r.n_experts = int32_t(c.n_experts);
    r.k = int32_t(c.n_experts_per_tok);
    r.n_group = int32_t(raw.integer("n_group", 8, 1, c.n_experts));
    r.topk_group = int32_t(raw.integer("topk_group", 4, 1, r.n_group));
    if (r.n_experts % r.n_group != 0)
        fail(MST_ERR_BAD_FORMAT, "config.json: n_group {} does not divide n_routed_experts {}", r.n_group, r.n_experts);
    r.normalize = raw.boolean("norm_topk_prob", true);
    r.scaling = float(raw.number("routed_scaling_factor", 2.5));
    s.fp8_block = fp8_block_size(c);
    s.compressed = compressed_tensors_config(c);
    return s;
}

DeepseekV3::DeepseekV3(const ModelBuildContext &ctx)
    : config_(ctx.config),
      settings_(deepseek_v3_settings(ctx.config)),
      backend_(ctx.backend),
      weights_(ctx.checkpoint, ctx.record_weight_use, settings_.fp8_block) {
    const ModelConfig &c = config_;
    const MlaShape &m = settings_.mla;
    const int64_t H = c.hidden_size, V = c.vocab_size, heads = m.n_heads;
    const int64_t qk = m.qk_head_dim(), latent = m.kv_lora_rank, rope = m.qk_rope_dim;

    // Kimi K2.5's wrapper (KimiK25ForConditionalGeneration) keeps the text model under
    // "language_model.". Decided by the config, not by probing names, so that a
    // synthesized checkpoint (which answers every name) gets the published layout.
    const std::string tp = c.outer_model_type == "kimi_k25" ? "language_model." : "";
    // Projections a compressed-tensors config does not ignore may be packed too (lm_head
    // included, where a config quantizes it).
    if (settings_.compressed) weights_.set_compressed_tensors(&*settings_.compressed, tp);
    embed_ = weights_.load(tp + "model.embed_tokens.weight", {V, H});
    final_norm_ = weights_.load(tp + "model.norm.weight", {H});
    lm_head_ =
        c.tie_word_embeddings ? Linear{embed_, {}, {}, {}} : weights_.load_linear(tp + "lm_head.weight", {V, H});
    std::optional<PackedIntScheme> packed_scheme;  // of the routed experts, once a layer has shown them

    std::vector<std::vector<ExpertLayout>> expert_layouts(size_t(c.n_layers));
    layers_.resize(size_t(c.n_layers));
    for (int64_t l = 0; l < c.n_layers; ++l) {
        Layer &L = layers_[size_t(l)];
        const std::string p = fmt::format("{}model.layers.{}.", tp, l);
        L.input_norm = weights_.load(p + "input_layernorm.weight", {H});
        L.post_attention_norm = weights_.load(p + "post_attention_layernorm.weight", {H});
        MlaWeights &a = L.attention;
        if (m.q_lora_rank > 0) {
            a.q_a = weights_.load_linear(p + "self_attn.q_a_proj.weight", {m.q_lora_rank, H});
            if (c.attention_bias) a.q_a.bias = weights_.load_f32(p + "self_attn.q_a_proj.bias", {m.q_lora_rank});
            a.q_a_norm = weights_.load(p + "self_attn.q_a_layernorm.weight", {m.q_lora_rank});
            a.q_b = weights_.load_linear(p + "self_attn.q_b_proj.weight", {heads * qk, m.q_lora_rank});
        } else {
            a.q = weights_.load_linear(p + "self_attn.q_proj.weight", {heads * qk, H});
        }
        a.kv_a = weights_.load_linear(p + "self_attn.kv_a_proj_with_mqa.weight", {latent + rope, H});
        if (c.attention_bias) a.kv_a.bias = weights_.load_f32(p + "self_attn.kv_a_proj_with_mqa.bias", {latent + rope});
        a.kv_a_norm = weights_.load(p + "self_attn.kv_a_layernorm.weight", {latent});
        // Also multiplied transposed (matmul_transposed, absorbed into the query): kept as stored.
        a.kv_b = weights_.load(p + "self_attn.kv_b_proj.weight", {heads * (m.qk_nope_dim + m.v_head_dim), latent},
                               WeightUse::KeepStored);
        a.o = weights_.load_linear(p + "self_attn.o_proj.weight", {H, heads * m.v_head_dim});
        if (c.attention_bias) a.o.bias = weights_.load_f32(p + "self_attn.o_proj.bias", {H});

        L.sparse = l >= settings_.first_dense_layers;
        const std::string mlp = L.sparse ? p + "mlp.shared_experts." : p + "mlp.";
        const int64_t I = L.sparse ? settings_.shared_intermediate : c.intermediate_size;
        if (I > 0) {
            L.has_mlp = true;
            L.mlp.gate = weights_.load_linear(mlp + "gate_proj.weight", {I, H});
            L.mlp.up = weights_.load_linear(mlp + "up_proj.weight", {I, H});
            L.mlp.down = weights_.load_linear(mlp + "down_proj.weight", {H, I});
        }
        if (L.sparse) {
            // The router decides which experts run: kept at full precision.
            L.router = weights_.load(p + "mlp.gate.weight", {c.n_experts, H}, WeightUse::KeepStored);
            if (weights_.has(p + "mlp.gate.e_score_correction_bias"))
                L.correction_bias = weights_.load_f32(p + "mlp.gate.e_score_correction_bias", {c.n_experts});
            const std::optional<PackedIntScheme> scheme = routed_expert_scheme(settings_, l);
            std::vector<ExpertLayout> &layouts = expert_layouts[size_t(l)];
            layouts = ctx.expert_layouts(l, [&] {
                if (scheme)
                    return locate_packed_int_experts(ctx.checkpoint, p + "mlp.experts", c.n_experts, H,
                                                     c.moe_intermediate_size, *scheme);
                return locate_block_fp8_experts(ctx.checkpoint, p + "mlp.experts", c.n_experts, H,
                                                c.moe_intermediate_size, settings_.fp8_block);
            });
            // A packed file holds the experts as the converter left them: INT words and
            // scales, or moestream's own Q8 / Q4 (which the block FP8 path computes).
            if (layouts_are_packed_int(layouts)) {
                if (!scheme)
                    fail(MST_ERR_BAD_FORMAT, "{}: layer {} experts are packed integers, but the config has no "
                         "compressed-tensors scheme for them", ctx.checkpoint.dir(), l);
                check_packed_int_experts(layouts, c.n_experts, H, c.moe_intermediate_size, *scheme,
                                         ctx.checkpoint.dir(), l);
                if (packed_scheme && !(*packed_scheme == *scheme))
                    fail(MST_ERR_UNSUPPORTED, "{}: routed experts of layer {} use another compressed-tensors scheme "
                         "than the layers before", ctx.checkpoint.dir(), l);
                packed_scheme = scheme;
            } else {
                if (packed_scheme)
                    fail(MST_ERR_UNSUPPORTED, "{}: layer {} experts are not packed integers, but earlier layers' are",
                         ctx.checkpoint.dir(), l);
                check_block_fp8_experts(layouts, c.n_experts, H, c.moe_intermediate_size, settings_.fp8_block,
                                        ctx.checkpoint.dir(), l);
            }
        }
    }
    rope_ = make_rope_table(c, int32_t(rope));
    rope_.interleaved = settings_.rope_interleave;
    expert_fn_ = packed_scheme ? packed_int_swiglu_expert(*packed_scheme, H, c.moe_intermediate_size)
                               : block_fp8_swiglu_expert(settings_.fp8_block);

    for (const auto &layer : expert_layouts) {
        if (layer.empty()) continue;
        ++sizes_.n_moe_layers;
        for (const ExpertLayout &e : layer) {
            sizes_.expert_bytes_total += e.nbytes();
            sizes_.expert_bytes_each = std::max(sizes_.expert_bytes_each, e.nbytes());
        }
    }
    sizes_.n_params_per_expert = uint64_t(3 * c.moe_intermediate_size * H);
    sizes_.n_params_dense = weights_.n_params();
    sizes_.n_params_total =
        sizes_.n_params_dense + uint64_t(sizes_.n_moe_layers) * uint64_t(c.n_experts) * sizes_.n_params_per_expert;
    sizes_.resident_bytes = weights_.bytes();
    sizes_.kv_cache_bytes_per_token = settings_.latent_kv_bytes_per_token(c.n_layers);
    sizes_.kv_cache_full_bytes_per_token = settings_.full_kv_bytes_per_token(c.n_layers);
    experts_ = ctx.make_expert_store(std::move(expert_layouts));
}

std::unique_ptr<ModelState> DeepseekV3::create_state(int32_t n_ctx) const {
    return std::make_unique<DeepseekV3State>(int32_t(config_.n_layers), n_ctx, settings_.mla);
}

void DeepseekV3::forward(ModelState &state, int32_t n_past, std::span<const int32_t> tokens,
                         const ForwardOptions &options, float *logits, ExpertIoStats &io) {
    const SequenceStep step{&state, n_past, tokens, options.all_logits, options.budget, options.budget_stats, logits};
    run({&step, 1}, options.experts_per_token, options.route_trace, io);
}

void DeepseekV3::forward_batch(std::span<const SequenceStep> steps, int32_t experts_per_token, ExpertIoStats &io) {
    run(steps, experts_per_token, RouteTrace{}, io);
}

void DeepseekV3::run(std::span<const SequenceStep> steps, int32_t experts_per_token, const RouteTrace &trace,
                     ExpertIoStats &io) {
    const ModelConfig &c = config_;
    const int64_t H = c.hidden_size;
    const float eps = float(c.rms_norm_eps);
    GroupTopkParams routing = settings_.routing;
    routing.k = experts_per_token;
    const BatchRows rows(steps);
    const int64_t n = rows.n_rows;

    std::vector<float> x(size_t(n * H)), h(size_t(n * H)), y(size_t(n * H)), shared(size_t(n * H));
    rows.embed(embed_, H, x.data());
    std::vector<LatentSegment> segments;
    for (size_t s = 0; s < steps.size(); ++s)
        segments.push_back(LatentSegment{&static_cast<DeepseekV3State &>(*steps[s].state).cache, rows.row0[s],
                                         int64_t(steps[s].tokens.size()), steps[s].n_past});

    LayerRouting layer_routing;
    layer_routing.n_layers = layers_.size();
    layer_routing.is_sparse = [this](size_t l) { return layers_[l].sparse; };
    layer_routing.route = [&](size_t l, const float *rows_h, int64_t n_routed, int32_t k, int32_t *ids,
                              float *weights) {
        const Layer &L = layers_[l];
        std::vector<float> router_logits(size_t(n_routed * routing.n_experts));
        backend_.matmul(L.router, rows_h, router_logits.data(), n_routed);
        GroupTopkParams p = routing;
        p.k = k;
        route_sigmoid_group_topk(router_logits.data(), L.correction_bias.empty() ? nullptr : L.correction_bias.data(),
                                 n_routed, p, ids, weights);
    };
    layer_routing.renormalized = routing.normalize;
    layer_routing.trace = trace;
    for (int64_t l = 0; l < c.n_layers; ++l) {
        const Layer &L = layers_[size_t(l)];
        backend_.rms_norm(x.data(), L.input_norm, 0.0f, eps, h.data(), n, H);
        mla_attention_segments(backend_, L.attention, settings_.mla, rope_, segments, int32_t(l), h.data(), n,
                               y.data());
        for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];

        backend_.rms_norm(x.data(), L.post_attention_norm, 0.0f, eps, h.data(), n, H);
        if (L.sparse) {
            sparse_feed_forward(backend_, *experts_, layer_routing, size_t(l), h.data(), n, H, routing.k, rows.budgets,
                                y.data(), io, expert_fn_);
            // The reference adds the shared experts' output to the routed experts' sum.
            if (L.has_mlp) {
                swiglu_linear(backend_, L.mlp, h.data(), n, shared.data());
                for (size_t i = 0; i < y.size(); ++i) y[i] += shared[i];
            }
        } else {
            swiglu_linear(backend_, L.mlp, h.data(), n, y.data());
        }
        for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
    }

    rows.logits(x.data(), H, c.vocab_size, [&](const float *final_rows, int64_t m, float *out) {
        std::vector<float> normed(size_t(m * H));
        backend_.rms_norm(final_rows, final_norm_, 0.0f, eps, normed.data(), m, H);
        run_linear(backend_, lm_head_, normed.data(), out, m);
    });
}

}  // namespace mst
