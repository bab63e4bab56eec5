#include "experts/reuse_features.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include <fmt/format.h>

namespace mst {

namespace {

// 2^(-age / h) for each half-life h and ages below kDecayAges; older uses count 0 (2^-16 of
// a use at the longest half-life, under the 0.01 floor of the log).
constexpr int64_t kDecayAges = 8192;
constexpr double kNeverAge = 65535.0;
// Past 2^24 a float no longer counts by ones; halving well before keeps the counts exact.
constexpr float kHalveAt = float(1 << 20);

const std::vector<std::array<float, kReuseHalfLives.size()>> &decay_table() {
    static const auto table = [] {
        auto t = std::vector<std::array<float, kReuseHalfLives.size()>>(size_t(kDecayAges));
        for (size_t a = 0; a < t.size(); ++a)
            for (size_t h = 0; h < kReuseHalfLives.size(); ++h) t[a][h] = float(std::exp2(-double(a) / kReuseHalfLives[h]));
        return t;
    }();
    return table;
}

float decay(int64_t age, size_t h) { return age < kDecayAges ? decay_table()[size_t(age)][h] : 0.0f; }

}  // namespace

std::vector<std::string> reuse_feature_names() {
    std::vector<std::string> names;
    for (int32_t h : kReuseHalfLives) names.push_back(fmt::format("log uses h={}", h));
    names.insert(names.end(), {"log age", "log gap 1", "log gap 2", "log gap 3", "uses in 16", "log share", "router score",
                               "chosen now", "follows now"});
    return names;
}

void ReuseFeatures::Follows::grow(int32_t experts) {
    if (experts <= n) return;
    std::vector<float> wider(size_t(experts) * size_t(experts), 0.0f);
    for (size_t a = 0; a < size_t(n); ++a)
        std::copy_n(counts.begin() + ptrdiff_t(a * size_t(n)), size_t(n), wider.begin() + ptrdiff_t(a * size_t(experts)));
    counts = std::move(wider);
    times.resize(size_t(experts), 0.0f);
    n = experts;
}

float ReuseFeatures::Follows::share(int32_t a, int32_t b) const {
    if (a < 0 || b < 0 || a >= n || b >= n || times[size_t(a)] == 0.0f) return 0.0f;
    return counts[size_t(a) * size_t(n) + size_t(b)] / times[size_t(a)];
}

void ReuseFeatures::lookup(const ExpertKey &key) {
    Layer &l = layers_[key.layer];
    const int64_t t = int64_t(l.lookups / uint64_t(k_));
    ++l.lookups;
    if (l.chosen_token != t) {
        if (window_ > 0) {
            if (l.chosen_token >= 0) l.before.insert(l.before.begin(), l.chosen);
            if (l.before.size() > size_t(window_)) l.before.pop_back();
            l.preceding.clear();
            for (const auto &set : l.before) l.preceding.insert(l.preceding.end(), set.begin(), set.end());
            std::ranges::sort(l.preceding);
            l.preceding.erase(std::unique(l.preceding.begin(), l.preceding.end()), l.preceding.end());
        }
        l.chosen_token = t;
        l.chosen.clear();
    }
    l.chosen.push_back(key.expert);
    if (window_ > 0 && key.expert >= 0) {
        Follows &f = l.follows;
        f.grow(key.expert + 1);
        const size_t n = size_t(f.n);
        float &times = f.times[size_t(key.expert)];
        if ((times += 1.0f) >= kHalveAt) {
            times /= 2.0f;
            for (size_t b = 0; b < n; ++b) f.counts[size_t(key.expert) * n + b] /= 2.0f;
        }
        for (int32_t a : l.preceding) f.counts[size_t(a) * n + size_t(key.expert)] += 1.0f;
    }
    Expert &e = experts_[key];
    if (e.last_use == t) return;  // a token looks an expert up once; a repeat adds nothing
    ++l.uses;
    const int64_t age = t - e.last_use;
    for (size_t h = 0; h < kReuseHalfLives.size(); ++h) e.decayed[h] = e.decayed[h] * decay(age, h) + 1.0f;
    e.recent = (age < 64 ? e.recent << age : 0) | 1u;
    for (size_t i = kReuseGaps; i-- > 1;) e.earlier[i] = e.earlier[i - 1];
    e.earlier[0] = e.last_use;
    e.last_use = t;
    ++e.uses;
}

void ReuseFeatures::router_score(const ExpertKey &key, float score) {
    Expert &e = experts_[key];
    e.score = score;
    // The token the layer looks up next (the scores come just before its lookups).
    e.scored_token = int64_t((layers_[key.layer].lookups + uint64_t(k_) - 1) / uint64_t(k_));
}

int64_t ReuseFeatures::token(int32_t layer) const {
    const auto l = layers_.find(layer);
    return l == layers_.end() || l->second.lookups == 0 ? -1 : int64_t((l->second.lookups - 1) / uint64_t(k_));
}

ReuseFeatureRow ReuseFeatures::features(const ExpertKey &key) const {
    ReuseFeatureRow x{};
    const int64_t now = token(key.layer);
    const auto it = experts_.find(key);
    const Expert none;
    const Expert &e = it == experts_.end() ? none : it->second;
    const bool used = e.last_use != kNever;
    const auto l = layers_.find(key.layer);
    const int64_t age = used ? now - e.last_use : int64_t(kNeverAge);
    size_t i = 0;
    for (size_t h = 0; h < kReuseHalfLives.size(); ++h)
        x[i++] = float(std::log2(0.01 + (used ? double(e.decayed[h]) * decay(age, h) : 0.0)));
    x[i++] = float(std::log2(1.0 + std::min(double(age), kNeverAge)));
    for (size_t j = 0; j < kReuseGaps; ++j) {
        const int64_t later = j == 0 ? e.last_use : e.earlier[j - 1];
        const bool known = used && e.earlier[j] != kNever;
        x[i++] = float(std::log2(known ? double(later - e.earlier[j]) : kNeverAge));
    }
    x[i++] = used && age < 16 ? float(std::popcount(e.recent & ((uint64_t(1) << (16 - age)) - 1))) : 0.0f;
    const double share = l == layers_.end() || l->second.uses == 0 ? 0.0 : double(e.uses) / double(l->second.uses);
    x[i++] = float(std::log2(1e-4 + share));
    x[i++] = e.scored_token == now ? e.score : 0.0f;
    x[i++] = used && age == 0 ? 1.0f : 0.0f;
    double follows = 0.0;
    if (l != layers_.end() && l->second.chosen_token == now && !l->second.chosen.empty() && key.expert >= 0) {
        const Layer &layer = l->second;
        for (int32_t a : layer.chosen) {
            if (window_ > 0) follows += layer.follows.share(a, key.expert);
            else if (fitted_) follows += fitted_->at(key.layer, a, key.expert);
        }
        follows /= double(layer.chosen.size());
    }
    x[i++] = float(follows);
    return x;
}

}  // namespace mst
