#include "model/moe_decoder.h"

#include <algorithm>

#include "backends/device_routing.h"
#include "core/error.h"
#include "core/op_profile.h"
#include "model/batch_rows.h"
#include "model/model_sizes.h"

namespace mst {
namespace {

class KvState final : public ModelState {
public:
    KvState(const ModelConfig &c, int32_t n_ctx)
        : cache(int32_t(c.n_layers), n_ctx, int32_t(c.n_kv_heads), int32_t(c.head_dim), int32_t(c.head_dim)) {}
    uint64_t bytes() const override { return cache.bytes(); }
    std::vector<std::span<float>> contents(int32_t n_past) override {
        std::vector<std::span<float>> out;
        cache.contents(n_past, out);
        return out;
    }
    void restored(int32_t) override { cache.renew_ids(); }
    bool rewindable() const override { return true; }
    KvCache cache;
};

void add_in_place(std::vector<float> &x, const std::vector<float> &y) {
    for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
}

}  // namespace

MoeDecoder::MoeDecoder(const ModelBuildContext &ctx)
    : config_(ctx.config), backend_(ctx.backend), weights_(ctx.checkpoint, ctx.record_weight_use) {
    const ModelConfig &c = config_;
    const int64_t H = c.hidden_size, V = c.vocab_size;
    embed_ = weights_.load("model.embed_tokens.weight", {V, H});
    final_norm_ = weights_.load("model.norm.weight", {H});
    lm_head_ = c.tie_word_embeddings ? embed_ : weights_.load("lm_head.weight", {V, H});
    layers_.resize(size_t(c.n_layers));
    rope_ = make_rope_table(c, int32_t(c.head_dim));
    attention_shape_ = GqaShape{int32_t(c.n_heads), int32_t(c.n_kv_heads), int32_t(c.head_dim), float(c.rms_norm_eps)};
}

GqaWeights MoeDecoder::load_attention(const std::string &p, bool qk_norm, bool sinks) {
    const ModelConfig &c = config_;
    const int64_t H = c.hidden_size, hd = c.head_dim;
    const int64_t q_dim = c.n_heads * hd, kv_dim = c.n_kv_heads * hd;
    GqaWeights a;
    a.q = weights_.load(p + "q_proj.weight", {q_dim, H});
    a.k = weights_.load(p + "k_proj.weight", {kv_dim, H});
    a.v = weights_.load(p + "v_proj.weight", {kv_dim, H});
    a.o = weights_.load(p + "o_proj.weight", {H, q_dim});
    if (c.attention_bias) {
        a.q_bias = weights_.load_f32(p + "q_proj.bias", {q_dim});
        a.k_bias = weights_.load_f32(p + "k_proj.bias", {kv_dim});
        a.v_bias = weights_.load_f32(p + "v_proj.bias", {kv_dim});
        a.o_bias = weights_.load_f32(p + "o_proj.bias", {H});
    }
    if (qk_norm) {
        a.q_norm = weights_.load(p + "q_norm.weight", {hd});
        a.k_norm = weights_.load(p + "k_norm.weight", {hd});
    }
    if (sinks) a.sinks = weights_.load_f32(p + "sinks", {c.n_heads});
    return a;
}

void MoeDecoder::finish(const ModelBuildContext &ctx, std::vector<std::vector<ExpertLayout>> expert_layouts,
                        uint64_t params_per_expert) {
    if (!route_) fail(MST_ERR_INTERNAL, "{}: no routing function set", config_.model_type);
    sizes_ = count_model_sizes(ctx.checkpoint, expert_layouts, params_per_expert, weights_.bytes());
    const ModelConfig &c = config_;
    sizes_.kv_cache_bytes_per_token = uint64_t(2 * c.n_kv_heads * c.head_dim) * sizeof(float) * uint64_t(c.n_layers);
    sizes_.kv_cache_full_bytes_per_token = sizes_.kv_cache_bytes_per_token;
    experts_ = ctx.make_expert_store(std::move(expert_layouts));
}

std::unique_ptr<ModelState> MoeDecoder::create_state(int32_t n_ctx) const {
    return std::make_unique<KvState>(config_, n_ctx);
}

void MoeDecoder::forward(ModelState &state, int32_t n_past, std::span<const int32_t> tokens,
                         const ForwardOptions &options, float *logits, ExpertIoStats &io) {
    const SequenceStep step{&state, n_past, tokens, options.all_logits, options.budget, options.budget_stats, logits};
    run({&step, 1}, options.experts_per_token, options.route_trace, io);
}

void MoeDecoder::forward_batch(std::span<const SequenceStep> steps, int32_t experts_per_token, ExpertIoStats &io) {
    run(steps, experts_per_token, RouteTrace{}, io);
}

void MoeDecoder::run(std::span<const SequenceStep> steps, int32_t k, const RouteTrace &trace, ExpertIoStats &io) {
    const ModelConfig &c = config_;
    const int64_t H = c.hidden_size;
    const int32_t E = int32_t(c.n_experts);
    if (E > 0 && (k < 1 || k > E))
        fail(MST_ERR_INVALID_ARGUMENT, "experts_per_token {} is outside 1..{}", k, E);
    const float eps = float(c.rms_norm_eps);
    const BatchRows rows(steps);
    const int64_t n = rows.n_rows;

    std::vector<float> x(size_t(n * H)), h(size_t(n * H)), y(size_t(n * H));
    rows.embed(embed_, H, x.data());
    std::vector<AttentionSegment> segments;
    for (size_t s = 0; s < steps.size(); ++s)
        segments.push_back(AttentionSegment{&static_cast<KvState &>(*steps[s].state).cache, rows.row0[s],
                                            int64_t(steps[s].tokens.size()), steps[s].n_past});

    LayerRouting routing = layer_routing();
    routing.trace = trace;
    // SwiGLU experts: the whole step is one backend batch (docs/device_graph.md); a device
    // backend waits only where the host reads results, once per sparse layer for the
    // router's logits. Experts of another form (expert_fn_) keep a batch per piece.
    const bool one_batch = !expert_fn_;
    BackendBatch step(backend_, one_batch);
    auto residual_add = [&](std::vector<float> &x, const std::vector<float> &y) {
        if (one_batch) backend_.add(x.data(), y.data(), int64_t(x.size()));
        else add_in_place(x, y);
    };
    for (int64_t l = 0; l < c.n_layers; ++l) {
        const Layer &L = layers_[size_t(l)];
        op_profile_set_layer(int(l));
        GqaShape shape = attention_shape_;
        shape.sliding_window = L.sliding_window;
        // The input norm joins the projections' batch (one submission on a device backend).
        gqa_attention_segments(backend_, L.attention, shape, rope_, segments, int32_t(l), x.data(), L.input_norm, eps,
                               h.data(), n, y.data());
        residual_add(x, y);

        bool added = false;  // the experts' sum already added into x (by its last dispatch)
        if (L.sparse) {
            backend_.rms_norm(x.data(), L.post_attention_norm, 0.0f, eps, h.data(), n, H);
            added = sparse_feed_forward(backend_, *experts_, routing, size_t(l), h.data(), n, H, k, rows.budgets,
                                        y.data(), io, expert_fn_, one_batch ? x.data() : nullptr);
        } else {
            backend_.rms_norm(x.data(), L.post_attention_norm, 0.0f, eps, h.data(), n, H);
            swiglu_mlp(backend_, L.mlp, h.data(), n, y.data());
        }
        if (!added) residual_add(x, y);
    }

    op_profile_set_layer(-1);
    // Several sequences: their wanted rows are gathered and their logits handed out on the
    // host, so a device backend's results are read first and the head's waited for.
    const bool gathered = steps.size() > 1;
    if (gathered) backend_.sync();
    rows.logits(x.data(), H, c.vocab_size, [&](const float *final_rows, int64_t m, float *out) {
        BackendVector normed(backend_, size_t(m * H));
        backend_.rms_norm(final_rows, final_norm_, 0.0f, eps, normed.data(), m, H);
        backend_.matmul(lm_head_, normed.data(), out, m);
        if (gathered) backend_.sync();
    });
    // The step's activations are not read on the host: a device backend need not deliver
    // them when the step's batch ends (the logits and the KV rows it does deliver).
    for (const std::vector<float> *v : {&x, &h, &y}) backend_.drop_results(v->data(), v->size() * sizeof(float));
}

LayerRouting MoeDecoder::layer_routing() {
    LayerRouting r;
    r.n_layers = layers_.size();
    r.is_sparse = [this](size_t l) { return layers_[l].sparse; };
    r.route = [this](size_t l, const float *h, int64_t n, int32_t k, int32_t *ids, float *weights) {
        const Layer &L = layers_[l];
        const int32_t E = int32_t(L.router.rows);
        // A BackendVector: on the device path its result is never delivered, and it must
        // not be once the vector is gone.
        BackendVector logits(backend_, size_t(n * E));
        backend_.matmul(L.router, h, logits.data(), n);
        // Softmax top-k on the device when the backend routes: the host then reads k ids
        // and weights instead of E logits (docs/device_graph.md). The sync stays: the
        // expert store looks the ids up on the host. Only the ids and weights go to host
        // memory; the activations stay on the device (Backend::sync_reads).
        DeviceRouting *device = device_routing(backend_);
        if (device && softmax_topk_routing_ && L.router_bias.empty()) {
            device->softmax_topk(logits.data(), n, E, k, routing_renormalized_, ids, weights);
            const Backend::HostSpan reads[] = {{ids, size_t(n * k) * sizeof(int32_t)},
                                               {weights, size_t(n * k) * sizeof(float)}};
            backend_.sync_reads(reads);
            return;
        }
        backend_.sync();  // top-k runs on the host (forward may hold a batch open)
        if (!L.router_bias.empty())
            for (int64_t t = 0; t < n; ++t)
                for (int32_t e = 0; e < E; ++e) logits.data()[size_t(t * E + e)] += L.router_bias[size_t(e)];
        route_(logits.data(), n, E, k, ids, weights);
    };
    r.route_on_device = [this](size_t l, const float *h, int64_t n, int32_t k, int32_t *ids, float *weights) {
        const Layer &L = layers_[l];
        DeviceRouting *device = device_routing(backend_);
        if (!device || !softmax_topk_routing_ || !L.router_bias.empty()) return false;
        const int32_t E = int32_t(L.router.rows);
        BackendVector logits(backend_, size_t(n * E));
        backend_.matmul(L.router, h, logits.data(), n);
        device->softmax_topk(logits.data(), n, E, k, routing_renormalized_, ids, weights);
        return true;
    };
    r.route_with_next = [this](size_t l, size_t next, const float *h, int32_t k, int32_t *ids, float *weights,
                               int32_t *next_ids, float *next_weights) {
        const Layer &L = layers_[l], &N = layers_[next];
        DeviceRouting *device = device_routing(backend_);
        if (!device || !softmax_topk_routing_ || !L.router_bias.empty() || !N.router_bias.empty()) return false;
        BackendVector logits(backend_, size_t(L.router.rows)), next_logits(backend_, size_t(N.router.rows));
        backend_.matmul(L.router, h, logits.data(), 1);
        backend_.matmul(N.router, h, next_logits.data(), 1);
        device->softmax_topk(logits.data(), 1, int32_t(L.router.rows), k, routing_renormalized_, ids, weights);
        device->softmax_topk(next_logits.data(), 1, int32_t(N.router.rows), k, routing_renormalized_, next_ids,
                             next_weights);
        const size_t id_bytes = size_t(k) * sizeof(int32_t), weight_bytes = size_t(k) * sizeof(float);
        const Backend::HostSpan reads[] = {
            {ids, id_bytes}, {weights, weight_bytes}, {next_ids, id_bytes}, {next_weights, weight_bytes}};
        backend_.sync_reads(reads);
        return true;
    };
    r.renormalized = routing_renormalized_;
    return r;
}

}  // namespace mst
