#include "learned_eviction.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <fmt/format.h>

#include "core/error.h"
#include "experts/eviction_policies.h"

namespace mst {

namespace {

// Solves a x = b in place (a: n x n, row-major, symmetric positive definite after the ridge).
void solve(std::vector<double> &a, std::vector<double> &b, size_t n) {
    for (size_t c = 0; c < n; ++c) {
        size_t pivot = c;
        for (size_t r = c + 1; r < n; ++r)
            if (std::abs(a[r * n + c]) > std::abs(a[pivot * n + c])) pivot = r;
        for (size_t j = 0; j < n; ++j) std::swap(a[c * n + j], a[pivot * n + j]);
        std::swap(b[c], b[pivot]);
        if (std::abs(a[c * n + c]) < 1e-300) fail(MST_ERR_INTERNAL, "singular system fitting the eviction model");
        for (size_t r = c + 1; r < n; ++r) {
            const double f = a[r * n + c] / a[c * n + c];
            for (size_t j = c; j < n; ++j) a[r * n + j] -= f * a[c * n + j];
            b[r] -= f * b[c];
        }
    }
    for (size_t c = n; c-- > 0;) {
        for (size_t j = c + 1; j < n; ++j) b[c] -= a[c * n + j] * b[j];
        b[c] /= a[c * n + c];
    }
}

}  // namespace

float ReuseAffinity::at(int32_t layer, int32_t a, int32_t b) const {
    const auto it = by_layer.find(layer);
    if (it == by_layer.end() || a < 0 || b < 0 || a >= n_experts || b >= n_experts) return 0.0f;
    return it->second[size_t(a) * size_t(n_experts) + size_t(b)];
}

ReuseAffinity fit_reuse_affinity(const std::vector<std::vector<ExpertKey>> &groups, size_t n_slots, int32_t n_experts,
                                 int32_t window) {
    ReuseAffinity f;
    f.window = window;
    f.n_experts = n_experts;
    if (n_slots == 0) return f;
    const size_t n = size_t(n_experts), tokens = groups.size() / n_slots;
    std::vector<uint8_t> soon(n);
    for (size_t s = 0; s < n_slots; ++s) {
        std::vector<double> follows(n * n, 0.0), chosen(n, 0.0);
        int32_t layer = -1;
        for (size_t t = 0; t + size_t(window) < tokens; ++t) {
            const auto &now = groups[t * n_slots + s];
            if (now.empty()) continue;
            layer = now[0].layer;
            std::fill(soon.begin(), soon.end(), uint8_t(0));
            for (size_t d = 1; d <= size_t(window); ++d)
                for (const ExpertKey &k : groups[(t + d) * n_slots + s]) soon[size_t(k.expert)] = 1;
            for (const ExpertKey &a : now) {
                chosen[size_t(a.expert)] += 1.0;
                for (size_t b = 0; b < n; ++b) follows[size_t(a.expert) * n + b] += soon[b];
            }
        }
        if (layer < 0) continue;
        std::vector<float> &table = f.by_layer[layer];
        table.assign(n * n, 0.0f);
        for (size_t a = 0; a < n; ++a)
            for (size_t b = 0; b < n; ++b)
                table[a * n + b] = chosen[a] > 0.0 ? float(follows[a * n + b] / chosen[a]) : 0.0f;
    }
    return f;
}

std::string EvictionModel::name() const {
    const std::string target = window > 0 ? fmt::format("W={}", window) : "log next use";
    return hidden > 0 ? fmt::format("mlp{} {}", hidden, target) : fmt::format("linear {}", target);
}

ReuseTrainingSet reuse_training_set(const std::vector<std::vector<ExpertKey>> &groups, const RouterScores *scores,
                                    size_t n_slots, int32_t n_experts, int32_t k, size_t stride,
                                    std::shared_ptr<const ReuseAffinity> affinity, int32_t online_follows) {
    ReuseTrainingSet set;
    set.affinity = affinity;
    set.online_follows = online_follows;
    if (n_slots == 0 || groups.empty()) return set;
    const int64_t n_tokens = int64_t(groups.size() / n_slots);
    std::vector<int32_t> slot_layer(n_slots, -1);
    // uses[s][e]: the tokens at which slot s looked expert e up, ascending.
    std::vector<std::vector<std::vector<int64_t>>> uses(n_slots, std::vector<std::vector<int64_t>>(size_t(n_experts)));
    for (size_t g = 0; g < size_t(n_tokens) * n_slots; ++g)
        for (const ExpertKey &key : groups[g]) {
            slot_layer[g % n_slots] = key.layer;
            uses[g % n_slots][size_t(key.expert)].push_back(int64_t(g / n_slots));
        }
    std::vector<std::vector<size_t>> cursor(n_slots, std::vector<size_t>(size_t(n_experts), 0));
    ReuseFeatures tracker(k, affinity.get(), online_follows);
    for (size_t g = 0; g < size_t(n_tokens) * n_slots; ++g) {
        if (scores)
            for (const auto &[key, score] : (*scores)[g]) tracker.router_score(key, score);
        for (const ExpertKey &key : groups[g]) tracker.lookup(key);
        const size_t s = g % n_slots;
        const int64_t t = int64_t(g / n_slots);
        if (slot_layer[s] < 0 || (size_t(t) + s) % stride != 0) continue;
        for (int32_t e = 0; e < n_experts; ++e) {
            const std::vector<int64_t> &u = uses[s][size_t(e)];
            size_t &c = cursor[s][size_t(e)];
            while (c < u.size() && u[c] <= t) ++c;
            const bool known = c < u.size() && u[c] - t <= int64_t(kReuseHorizon);
            if (!known && t + int64_t(kReuseHorizon) >= n_tokens) continue;  // the future is cut off
            set.rows.push_back(tracker.features(ExpertKey{slot_layer[s], e}));
            set.next.push_back(known ? uint32_t(u[c] - t) : 0u);
        }
    }
    return set;
}

namespace {

// The model's target for a row: 1 / 0 (reused within the window or not), or -log2(tokens to
// the next use) capped at the horizon.
double target(uint32_t next, int32_t window) {
    if (window > 0) return next != 0 && next <= uint32_t(window) ? 1.0 : 0.0;
    return -std::log2(next == 0 ? double(kReuseHorizon) : std::min<double>(next, kReuseHorizon));
}

// Means and scales of the features over the set; a feature left out gets scale 0 (ignored).
void standardize(const ReuseTrainingSet &set, bool use_scores, bool use_follows, EvictionModel &m) {
    const size_t rows = set.rows.size();
    if (rows == 0) fail(MST_ERR_INVALID_ARGUMENT, "no training rows for the eviction model");
    for (size_t i = 0; i < kReuseFeatures; ++i) {
        double sum = 0.0, sq = 0.0;
        for (const ReuseFeatureRow &x : set.rows) {
            sum += x[i];
            sq += double(x[i]) * x[i];
        }
        const double mean = sum / double(rows), var = std::max(0.0, sq / double(rows) - mean * mean);
        m.mean[i] = float(mean);
        const bool left_out = (!use_scores && i == kReuseScoreFeature) || (!use_follows && i == kReuseFollowsFeature);
        m.scale[i] = var > 1e-12 && !left_out ? float(std::sqrt(var)) : 0.0f;
    }
}

}  // namespace

EvictionModel fit_eviction_model(const ReuseTrainingSet &set, int32_t window, bool use_scores, bool use_follows) {
    constexpr size_t n = kReuseFeatures + 1;
    EvictionModel m;
    m.window = window;
    m.affinity = set.affinity;
    m.online_follows = set.online_follows;
    standardize(set, use_scores, use_follows, m);
    const size_t rows = set.rows.size();
    auto standardized = [&](const ReuseFeatureRow &x, std::array<double, n> &z) {
        for (size_t i = 0; i < kReuseFeatures; ++i) z[i] = m.scale[i] > 0.0f ? double((x[i] - m.mean[i]) / m.scale[i]) : 0.0;
        z[kReuseFeatures] = 1.0;
    };
    const double ridge = 1e-3 * double(rows) / 1e4;  // ~ a prior of 1e-3 per 10,000 rows: negligible, keeps it solvable
    std::array<double, n> z{};
    const int iterations = window > 0 ? 12 : 1;
    for (int it = 0; it < iterations; ++it) {
        std::vector<double> h(n * n, 0.0), g(n, 0.0);
        for (size_t r = 0; r < rows; ++r) {
            standardized(set.rows[r], z);
            double wz = 0.0;
            for (size_t i = 0; i < n; ++i) wz += m.weights[i] * z[i];
            const double y = target(set.next[r], window);
            double residual, curvature;
            if (window > 0) {
                const double p = 1.0 / (1.0 + std::exp(-wz));
                residual = p - y;
                curvature = std::max(p * (1.0 - p), 1e-9);
            } else {
                residual = wz - y;
                curvature = 1.0;
            }
            for (size_t i = 0; i < n; ++i) {
                g[i] += residual * z[i];
                for (size_t j = 0; j <= i; ++j) h[i * n + j] += curvature * z[i] * z[j];
            }
        }
        for (size_t i = 0; i < n; ++i) {
            for (size_t j = 0; j < i; ++j) h[j * n + i] = h[i * n + j];
            h[i * n + i] += ridge;
            g[i] += ridge * m.weights[i];
        }
        solve(h, g, n);
        double step = 0.0;
        for (size_t i = 0; i < n; ++i) {
            m.weights[i] -= g[i];
            step = std::max(step, std::abs(g[i]));
        }
        if (step < 1e-6) break;
    }
    return m;
}

EvictionModel fit_eviction_mlp(const ReuseTrainingSet &set, int32_t window, bool use_scores, int32_t hidden,
                               int32_t epochs, bool use_follows) {
    constexpr size_t n = kReuseFeatures + 1;
    EvictionModel m;
    m.window = window;
    m.hidden = std::max(hidden, 1);
    m.affinity = set.affinity;
    m.online_follows = set.online_follows;
    standardize(set, use_scores, use_follows, m);
    const size_t units = size_t(m.hidden), rows = set.rows.size();
    std::mt19937_64 rng(0x5eed);
    std::normal_distribution<double> init(0.0, 1.0 / std::sqrt(double(n)));
    m.layer1.resize(units * n);
    m.layer2.assign(units + 1, 0.0);
    for (double &w : m.layer1) w = init(rng);
    for (size_t u = 0; u < units; ++u) m.layer2[u] = init(rng);
    // Adam (Kingma and Ba, 2015) over both layers' weights, flattened.
    const size_t n_params = m.layer1.size() + m.layer2.size();
    std::vector<double> grad(n_params), first(n_params, 0.0), second(n_params, 0.0);
    constexpr double kRate = 2e-3, kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;
    constexpr size_t kBatch = 256;
    std::vector<size_t> order(rows);
    for (size_t r = 0; r < rows; ++r) order[r] = r;
    std::array<double, n> z{};
    std::vector<double> act(units);
    uint64_t step = 0;
    for (int32_t epoch = 0; epoch < epochs; ++epoch) {
        std::shuffle(order.begin(), order.end(), rng);
        for (size_t b = 0; b < rows; b += kBatch) {
            std::fill(grad.begin(), grad.end(), 0.0);
            const size_t end = std::min(rows, b + kBatch);
            for (size_t o = b; o < end; ++o) {
                const ReuseFeatureRow &x = set.rows[order[o]];
                for (size_t i = 0; i < kReuseFeatures; ++i) z[i] = m.scale[i] > 0.0f ? double((x[i] - m.mean[i]) / m.scale[i]) : 0.0;
                z[kReuseFeatures] = 1.0;
                double out = m.layer2[units];
                for (size_t u = 0; u < units; ++u) {
                    double a = 0.0;
                    for (size_t i = 0; i < n; ++i) a += m.layer1[u * n + i] * z[i];
                    act[u] = std::max(a, 0.0);
                    out += m.layer2[u] * act[u];
                }
                // Both losses (logistic, squared) have the gradient prediction - target at the output.
                const double y = target(set.next[order[o]], window);
                const double d = (window > 0 ? 1.0 / (1.0 + std::exp(-out)) : out) - y;
                double *g2 = &grad[m.layer1.size()];
                g2[units] += d;
                for (size_t u = 0; u < units; ++u) {
                    g2[u] += d * act[u];
                    if (act[u] <= 0.0) continue;
                    const double du = d * m.layer2[u];
                    for (size_t i = 0; i < n; ++i) grad[u * n + i] += du * z[i];
                }
            }
            ++step;
            const double scale = 1.0 / double(end - b);
            const double c1 = 1.0 - std::pow(kBeta1, double(step)), c2 = 1.0 - std::pow(kBeta2, double(step));
            for (size_t p = 0; p < n_params; ++p) {
                const double g = grad[p] * scale;
                first[p] = kBeta1 * first[p] + (1.0 - kBeta1) * g;
                second[p] = kBeta2 * second[p] + (1.0 - kBeta2) * g * g;
                double &w = p < m.layer1.size() ? m.layer1[p] : m.layer2[p - m.layer1.size()];
                w -= kRate * (first[p] / c1) / (std::sqrt(second[p] / c2) + kEps);
            }
        }
    }
    return m;
}

std::unique_ptr<EvictionPolicy> make_learned_policy(const EvictionModel &model) {
    return make_learned_policy(model, model.online_follows, model.affinity);
}

}  // namespace mst
