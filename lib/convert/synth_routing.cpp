#include "convert/synth_routing.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <span>

#include "core/error.h"
#include "model/loaded_model.h"
#include "router/routing_stats.h"

namespace mst {
namespace {

// Calibration: rounds of draft + run, tokens run per round, and how far each round moves
// a scale towards its target (a share grows faster than linearly with the row's scale,
// so a full step overshoots).
constexpr int kRounds = 8;
constexpr size_t kCalibrationTokens = 1024;
constexpr double kStep = 0.6;
// A share below this (an expert the trace never chose) is aimed at this instead: a row
// scaled to zero would make its expert's logit exactly 0, which is not "never chosen".
constexpr double kMinShare = 1e-4;
// Bias calibration: the first round's step per unit of log(target / measured share),
// shrinking each round, and the largest log ratio one round acts on. The step is small
// against the sigmoid scores' range because synth's router logits are small; of 0.025,
// 0.04 and 0.1 tried on the DeepSeek-V3 shape, 0.04 came closest on held-out text (0.1
// fits the calibration text and carries worse; bench/RESULTS.md).
constexpr double kBiasStep = 0.04, kBiasDecay = 0.75, kMaxLogRatio = 1.0;
// Recency heads (convert/synth_recency.h): their o_proj gain starts at 0 (recency only where
// the trace reuses more than the draft) and moves per round by step x log(target reuse /
// measured), the step shrinking each round; at 1 a recency head writes as much as a plain one.
// Step 1.5 of 1, 1.5 and 2 measured on Qwen3-MoE's own tokens: 2 overshoots the later layers
// (each layer's recency reaches the next ones through the residual stream) and 1 stops short
// (bench/RESULTS.md, ninth round).
constexpr float kFirstRecencyGain = 0.0f, kMaxRecencyGain = 8.0f;
constexpr double kRecencyStep = 1.5, kRecencyDecay = 0.8;

// `shares` (summing to 1) resampled to n experts, most used first, summing to 1.
std::vector<double> resample_sorted(std::vector<double> shares, int32_t n) {
    std::ranges::sort(shares, std::greater<>());
    const size_t m = shares.size();
    if (size_t(n) == m) return shares;
    // Interpolate the cumulative curve at i / n of the way and take differences.
    std::vector<double> cum(m + 1, 0.0);
    for (size_t i = 0; i < m; ++i) cum[i + 1] = cum[i] + shares[i];
    auto at = [&](double x) {  // x in [0, m]
        const size_t i = std::min(size_t(x), m - 1);
        return cum[i] + (x - double(i)) * shares[i];
    };
    std::vector<double> out(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i)
        out[size_t(i)] = at(double(i + 1) * double(m) / n) - at(double(i) * double(m) / n);
    return out;
}

// Text whose bytes come with English letter frequencies (space included): the synthesized
// tokenizer is byte-level, and the routing of random layers depends on how often tokens
// repeat, so uniform letters calibrate for a text nobody measures on.
std::string calibration_text(uint64_t seed, size_t bytes) {
    // Per mille of English text, ' ' then 'a'..'z'.
    static constexpr double kFrequency[27] = {180, 65, 12, 22, 35, 102, 18, 16, 50, 56, 1, 6, 33, 20,
                                              55, 61, 15, 1, 49, 51, 74, 23, 8, 19, 1, 16, 1};
    std::mt19937_64 rng(seed ^ 0x5eedca11b4a7e5ULL);
    std::discrete_distribution<int> symbol(std::begin(kFrequency), std::end(kFrequency));
    std::string text(bytes, ' ');
    for (char &c : text) {
        const int s = symbol(rng);
        c = s == 0 ? ' ' : char('a' + s - 1);
    }
    return text;
}

// The routing of the model at `path` over the calibration tokens, one slot per sparse layer
// (model index order).
RouteTraceData draft_routing(const std::string &path, const std::vector<int32_t> &tokens, size_t n_layers,
                             int32_t n_experts) {
    LoadOptions lo;
    lo.backend = "cpu";
    const auto model = load_model(path, lo);
    std::map<size_t, std::vector<int32_t>> ids;
    ForwardOptions fo;
    fo.experts_per_token = model->experts_per_token;
    fo.route_trace.chosen = [&](size_t layer, int64_t n, int32_t k, const int32_t *chosen, const float *) {
        ids[layer].insert(ids[layer].end(), chosen, chosen + n * k);
    };
    std::vector<float> logits(size_t(model->config.vocab_size));
    ExpertIoStats io;
    const auto state = model->model->create_state(int32_t(tokens.size()));
    model->model->forward(*state, 0, std::span<const int32_t>(tokens), fo, logits.data(), io);
    if (ids.size() != n_layers)
        fail(MST_ERR_UNSUPPORTED, "--routing-from: the draft routed in {} layers, its config has {} with experts",
             ids.size(), n_layers);
    std::vector<int32_t> layers;
    for (const auto &[l, v] : ids) layers.push_back(int32_t(l));
    const int32_t k = model->experts_per_token;
    RouteTraceData t = RouteTraceData::sized(n_experts, k, 0, int64_t(tokens.size()), layers);
    for (size_t s = 0; s < layers.size(); ++s) {
        const std::vector<int32_t> &v = ids[size_t(layers[s])];
        for (int64_t tok = 0; tok < t.n_tokens; ++tok)
            for (int32_t j = 0; j < k; ++j) t.ids[t.at(tok, s) + size_t(j)] = v[size_t(tok * k + j)];
    }
    return t;
}

// Each slot's next-token reuse (share of a token's experts the previous token also chose).
std::vector<double> next_token_reuse(const RouteTraceData &trace) {
    std::vector<double> reuse;
    for (const LayerRoutingStats &l : routing_stats(trace).layers) reuse.push_back(l.reuse_previous);
    return reuse;
}

// The trace's first `n` tokens (all of them if it has fewer).
RouteTraceData first_tokens(const RouteTraceData &trace, int64_t n) {
    if (n >= trace.n_tokens) return trace;
    RouteTraceData t = RouteTraceData::sized(trace.n_experts, trace.k, 0, n, trace.layers);
    std::copy_n(trace.ids.begin(), t.ids.size(), t.ids.begin());
    std::copy_n(trace.weights.begin(), t.weights.size(), t.weights.begin());
    return t;
}

}  // namespace

const std::vector<float> *RouterRowScales::for_layer(int32_t layer) const {
    const auto it = std::ranges::find(layers, layer);
    return it == layers.end() ? nullptr : &scales[size_t(it - layers.begin())];
}

std::optional<float> RouterRowScales::recency_gain_for_layer(int32_t layer) const {
    const auto it = std::ranges::find(layers, layer);
    if (it == layers.end() || recency_gains.empty()) return std::nullopt;
    return recency_gains[size_t(it - layers.begin())];
}

const std::vector<float> *RouterRowScales::bias_for_layer(int32_t layer) const {
    const auto it = std::ranges::find(layers, layer);
    return it == layers.end() || biases.empty() ? nullptr : &biases[size_t(it - layers.begin())];
}

std::vector<std::vector<double>> expert_shares(const RouteTraceData &trace) {
    std::vector<std::vector<double>> shares(trace.n_slots(), std::vector<double>(size_t(trace.n_experts), 0.0));
    for (size_t s = 0; s < trace.n_slots(); ++s) {
        double total = 0.0;
        for (int64_t t = 0; t < trace.n_tokens; ++t)
            for (int32_t j = 0; j < trace.k; ++j) {
                const int32_t e = trace.ids[trace.at(t, s) + size_t(j)];
                if (e < 0) continue;
                shares[s][size_t(e)] += 1.0;
                total += 1.0;
            }
        if (total > 0)
            for (double &v : shares[s]) v /= total;
    }
    return shares;
}

std::vector<std::vector<double>> target_shares(const RouteTraceData &trace, size_t sparse_layers, int32_t n_experts) {
    if (trace.n_tokens == 0 || trace.n_slots() == 0)
        fail(MST_ERR_INVALID_ARGUMENT, "the routing trace has no tokens or no sparse layers");
    const auto shares = expert_shares(trace);
    std::vector<std::vector<double>> out;
    for (size_t i = 0; i < sparse_layers; ++i) {
        const std::vector<double> &s = shares[i * trace.n_slots() / sparse_layers];
        out.push_back(n_experts == trace.n_experts ? s : resample_sorted(s, n_experts));
    }
    return out;
}

RouterRowScales calibrate_router_rows(const RouteTraceData &trace, const std::vector<int32_t> &sparse_layers,
                                      int32_t n_experts, uint64_t seed, const std::string &text,
                                      const WriteDraftFn &write_draft, bool by_bias, bool recency) {
    const auto target = target_shares(trace, sparse_layers.size(), n_experts);
    std::vector<double> target_reuse;
    RouterRowScales scales;
    scales.layers = sparse_layers;
    scales.scales.assign(sparse_layers.size(), std::vector<float>(size_t(n_experts), 1.0f));
    if (by_bias) scales.biases.assign(sparse_layers.size(), std::vector<float>(size_t(n_experts), 0.0f));
    if (recency) scales.recency_gains.assign(sparse_layers.size(), kFirstRecencyGain);
    std::vector<int32_t> tokens;
    for (int round = 0; round < kRounds; ++round) {
        const std::string draft = write_draft(scales);
        if (tokens.empty()) {
            LoadOptions lo;
            lo.backend = "cpu";
            tokens = load_model(draft, lo)->tokenizer->encode(
                text.empty() ? calibration_text(seed, kCalibrationTokens * 2) : text, false);
            if (tokens.size() < 64) fail(MST_ERR_INVALID_ARGUMENT, "--routing-text has {} tokens, fewer than 64", tokens.size());
            tokens.resize(std::min(tokens.size(), kCalibrationTokens));
            // The target reuse is the trace's over as many tokens as the drafts run: a trace of
            // the calibration text covers these tokens first, and reuse differs along a text
            // (bench/RESULTS.md, tenth round).
            const std::vector<double> trace_reuse = next_token_reuse(
                first_tokens(trace, int64_t(tokens.size())));
            for (size_t i = 0; i < sparse_layers.size(); ++i)
                target_reuse.push_back(trace_reuse[i * trace.n_slots() / sparse_layers.size()]);
        }
        const RouteTraceData routed = draft_routing(draft, tokens, sparse_layers.size(), n_experts);
        const auto got = expert_shares(routed);
        if (recency) {
            // More recency, more reuse: each layer's gain moves by the log ratio of the
            // trace's next-token reuse to the draft's, less each round. Counted over all
            // token pairs: with the trained model's own tokens (--tokenizer-from) both sides
            // count the same pairs (bench/RESULTS.md, seventh and ninth rounds).
            const std::vector<double> reuse = next_token_reuse(routed);
            const double step = kRecencyStep * std::pow(kRecencyDecay, round);
            for (size_t l = 0; l < sparse_layers.size(); ++l) {
                const double r = std::log(std::max(target_reuse[l], 1e-3) / std::max(reuse[l], 1e-3));
                float &gain = scales.recency_gains[l];
                gain = std::clamp(float(gain + step * r), 0.0f, kMaxRecencyGain);
            }
        }
        const double floor = 0.5 / (double(tokens.size()) * double(trace.k));
        if (by_bias) {
            const double step = kBiasStep * std::pow(kBiasDecay, round);
            for (size_t l = 0; l < sparse_layers.size(); ++l) {
                std::vector<float> &b = scales.biases[l];
                for (size_t e = 0; e < b.size(); ++e) {
                    const double r = std::log(std::max(target[l][e], kMinShare) / std::max(got[l][e], floor));
                    b[e] += float(step * std::clamp(r, -kMaxLogRatio, kMaxLogRatio));
                }
                // Only differences between experts select: keep the mean at 0.
                const double mean = std::accumulate(b.begin(), b.end(), 0.0) / double(b.size());
                for (float &v : b) v = float(v - mean);
            }
            continue;
        }
        for (size_t l = 0; l < sparse_layers.size(); ++l) {
            std::vector<float> &s = scales.scales[l];
            for (size_t e = 0; e < s.size(); ++e)
                s[e] *= float(std::pow(std::max(target[l][e], kMinShare) / std::max(got[l][e], floor), kStep * 0.5));
            const double mean = std::accumulate(s.begin(), s.end(), 0.0) / double(s.size());
            for (float &v : s) v = float(v / mean);
        }
    }
    return scales;
}

}  // namespace mst
