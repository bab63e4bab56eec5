#include "model/qwen3_moe.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "model/expert_tensors.h"
#include "router/softmax_topk.h"

namespace mst {
namespace {

class Qwen3MoeState final : public ModelState {
public:
    Qwen3MoeState(const ModelConfig &c, int32_t n_ctx)
        : cache(int32_t(c.n_layers), n_ctx, int32_t(c.n_kv_heads), int32_t(c.head_dim), int32_t(c.head_dim)) {}
    uint64_t bytes() const override { return cache.bytes(); }
    KvCache cache;
};

bool layer_is_sparse(const ModelConfig &c, int64_t layer) {
    const bool dense_listed =
        std::find(c.mlp_only_layers.begin(), c.mlp_only_layers.end(), layer) != c.mlp_only_layers.end();
    return !dense_listed && c.n_experts > 0 && (layer + 1) % std::max<int64_t>(c.decoder_sparse_step, 1) == 0;
}

}  // namespace

Qwen3Moe::Qwen3Moe(const ModelBuildContext &ctx)
    : config_(ctx.config), backend_(ctx.backend), weights_(ctx.checkpoint, ctx.record_weight_use) {
    const ModelConfig &c = config_;
    const int64_t H = c.hidden_size, V = c.vocab_size, hd = c.head_dim;
    const int64_t q_dim = c.n_heads * hd, kv_dim = c.n_kv_heads * hd;
    if (c.n_experts > 0 && (c.n_experts_per_tok < 1 || c.moe_intermediate_size < 1))
        fail(MST_ERR_BAD_FORMAT, "qwen3_moe config needs num_experts_per_tok and moe_intermediate_size >= 1");

    embed_ = weights_.load("model.embed_tokens.weight", {V, H});
    final_norm_ = weights_.load("model.norm.weight", {H});
    lm_head_ = c.tie_word_embeddings ? embed_ : weights_.load("lm_head.weight", {V, H});

    std::vector<std::vector<ExpertLayout>> expert_layouts(size_t(c.n_layers));
    layers_.resize(size_t(c.n_layers));
    for (int64_t l = 0; l < c.n_layers; ++l) {
        Layer &L = layers_[size_t(l)];
        const std::string p = fmt::format("model.layers.{}.", l);
        L.input_norm = weights_.load(p + "input_layernorm.weight", {H});
        L.post_attention_norm = weights_.load(p + "post_attention_layernorm.weight", {H});
        GqaWeights &a = L.attention;
        a.q = weights_.load(p + "self_attn.q_proj.weight", {q_dim, H});
        a.k = weights_.load(p + "self_attn.k_proj.weight", {kv_dim, H});
        a.v = weights_.load(p + "self_attn.v_proj.weight", {kv_dim, H});
        a.o = weights_.load(p + "self_attn.o_proj.weight", {H, q_dim});
        if (c.attention_bias) {
            a.q_bias = weights_.load_f32(p + "self_attn.q_proj.bias", {q_dim});
            a.k_bias = weights_.load_f32(p + "self_attn.k_proj.bias", {kv_dim});
            a.v_bias = weights_.load_f32(p + "self_attn.v_proj.bias", {kv_dim});
        }
        a.q_norm = weights_.load(p + "self_attn.q_norm.weight", {hd});
        a.k_norm = weights_.load(p + "self_attn.k_norm.weight", {hd});

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
    rope_ = make_rope_table(c, int32_t(hd));
    attention_shape_ = GqaShape{int32_t(c.n_heads), int32_t(c.n_kv_heads), int32_t(hd), float(c.rms_norm_eps), 0.0f};

    // Sizes: routed experts are whatever the checkpoint holds beyond the resident weights.
    for (const auto &layer : expert_layouts) {
        if (layer.empty()) continue;
        ++sizes_.n_moe_layers;
        for (const ExpertLayout &e : layer) {
            sizes_.expert_bytes_total += e.nbytes();
            sizes_.expert_bytes_each = std::max(sizes_.expert_bytes_each, e.nbytes());
            for (const ExpertMatrix &m : e.parts) sizes_.n_params_total += uint64_t(m.rows * m.cols);
        }
    }
    sizes_.n_params_per_expert = uint64_t(3 * c.moe_intermediate_size * H);
    for (const TensorInfo &t : ctx.checkpoint.tensors())
        if (t.name.find(".mlp.experts.") == std::string::npos) sizes_.n_params_dense += uint64_t(t.numel());
    sizes_.n_params_total += sizes_.n_params_dense;
    sizes_.resident_bytes = weights_.bytes();
    experts_ = ctx.make_expert_store(std::move(expert_layouts));
}

std::unique_ptr<ModelState> Qwen3Moe::create_state(int32_t n_ctx) const {
    return std::make_unique<Qwen3MoeState>(config_, n_ctx);
}

void Qwen3Moe::forward(ModelState &state, int32_t n_past, std::span<const int32_t> tokens,
                       const ForwardOptions &options, float *logits, ExpertIoStats &io) {
    const ModelConfig &c = config_;
    KvCache &cache = static_cast<Qwen3MoeState &>(state).cache;
    const int64_t n = int64_t(tokens.size()), H = c.hidden_size;
    const int32_t k = options.experts_per_token;

    std::vector<float> x(size_t(n * H)), h(size_t(n * H)), y(size_t(n * H));
    const size_t row_bytes = size_t(dtype_row_bytes(embed_.dtype, H));
    for (int64_t t = 0; t < n; ++t)
        convert_to_f32(embed_.dtype, static_cast<const uint8_t *>(embed_.data) + size_t(tokens[size_t(t)]) * row_bytes,
                       x.data() + t * H, size_t(H));

    std::vector<float> router_logits;
    std::vector<int32_t> expert_ids;
    std::vector<float> expert_weights;
    for (int64_t l = 0; l < c.n_layers; ++l) {
        const Layer &L = layers_[size_t(l)];
        const float eps = float(c.rms_norm_eps);
        backend_.rms_norm(x.data(), L.input_norm, 0.0f, eps, h.data(), n, H);
        gqa_attention(backend_, L.attention, attention_shape_, rope_, cache, int32_t(l), h.data(), n, n_past, y.data());
        for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];

        backend_.rms_norm(x.data(), L.post_attention_norm, 0.0f, eps, h.data(), n, H);
        if (L.sparse) {
            const int32_t E = int32_t(c.n_experts);
            router_logits.resize(size_t(n * E));
            backend_.matmul(L.router, h.data(), router_logits.data(), n);
            expert_ids.resize(size_t(n * k));
            expert_weights.resize(size_t(n * k));
            route_softmax_topk(router_logits.data(), n, E, k, c.norm_topk_prob, expert_ids.data(), expert_weights.data());
            // Decode: guess the next MoE layer's experts now, so their reads overlap this
            // layer's expert compute.
            if (n == 1 && experts_->prefetch_enabled())
                for (size_t next = size_t(l) + 1; next < layers_.size(); ++next)
                    if (layers_[next].sparse) {
                        prefetch_softmax_topk(backend_, *experts_, int32_t(next), layers_[next].router, h.data(), k);
                        break;
                    }
            std::fill(y.begin(), y.end(), 0.0f);
            routed_experts(backend_, *experts_, int32_t(l), h.data(), H,
                           Routing{n, k, expert_ids.data(), expert_weights.data()}, y.data(), io);
        } else {
            swiglu_mlp(backend_, L.mlp, h.data(), n, y.data());
        }
        for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
    }

    const int64_t first_row = options.all_logits ? 0 : n - 1;
    const int64_t n_rows = n - first_row;
    backend_.rms_norm(x.data() + first_row * H, final_norm_, 0.0f, float(c.rms_norm_eps), h.data(), n_rows, H);
    backend_.matmul(lm_head_, h.data(), logits, n_rows);
}

}  // namespace mst
