#include "router/routing_stats.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>

namespace mst {

namespace {

double entropy_bits(const std::vector<double> &counts) {
    double total = 0.0, h = 0.0;
    for (double c : counts) total += c;
    for (double c : counts)
        if (c > 0) h -= c / total * std::log2(c / total);
    return h;
}

// The distinct experts of a token in a slot (-1 dropped).
std::vector<int32_t> chosen_set(const RouteTraceData &t, int64_t tok, size_t slot) {
    std::vector<int32_t> s(t.ids.begin() + ptrdiff_t(t.at(tok, slot)), t.ids.begin() + ptrdiff_t(t.at(tok, slot) + size_t(t.k)));
    std::erase(s, -1);
    std::ranges::sort(s);
    s.erase(std::unique(s.begin(), s.end()), s.end());
    return s;
}

size_t distance_bucket(int64_t distance) {
    for (size_t b = 0; b + 1 < kReuseDistanceBounds.size(); ++b)
        if (distance <= kReuseDistanceBounds[b]) return b;
    return kReuseDistanceBounds.size() - 2;
}

LayerRoutingStats layer_stats(const RouteTraceData &t, size_t slot) {
    LayerRoutingStats s;
    s.layer = t.layers[slot];
    const size_t E = size_t(t.n_experts);
    std::vector<double> counts(E, 0.0);
    std::vector<int64_t> last(E, -1);
    std::vector<int32_t> previous;
    double choices = 0.0, reused = 0.0;
    std::array<double, 8> buckets{};
    for (int64_t tok = 0; tok < t.n_tokens; ++tok) {
        const std::vector<int32_t> set = chosen_set(t, tok, slot);
        for (int32_t e : set) {
            counts[size_t(e)] += 1.0;
            buckets[last[size_t(e)] < 0 ? buckets.size() - 1 : distance_bucket(tok - last[size_t(e)])] += 1.0;
            last[size_t(e)] = tok;
            if (std::ranges::binary_search(previous, e)) reused += 1.0;
        }
        choices += double(set.size());
        previous = set;
    }
    s.entropy_bits = entropy_bits(counts);
    double sum_p2 = 0.0;
    for (double c : counts) {
        s.max_share = std::max(s.max_share, choices > 0 ? c / choices : 0.0);
        s.unused += c == 0.0 ? 1 : 0;
        const double p = c / double(t.n_tokens);  // P(expert in a token's set)
        sum_p2 += p * p;
    }
    const double per_token = choices / double(t.n_tokens);
    s.reuse_previous = t.n_tokens > 1 ? reused / (choices - double(chosen_set(t, 0, slot).size())) : 0.0;
    s.reuse_independent = per_token > 0 ? sum_p2 / per_token : 0.0;
    for (size_t b = 0; b < buckets.size(); ++b) s.distance_share[b] = choices > 0 ? buckets[b] / choices : 0.0;
    return s;
}

LayerPairStats pair_stats(const RouteTraceData &t, size_t from, size_t to) {
    const size_t E = size_t(t.n_experts);
    std::vector<double> joint(E * E, 0.0), a(E, 0.0), b(E, 0.0);
    double n = 0.0;
    for (int64_t tok = 0; tok < t.n_tokens; ++tok) {
        const std::vector<int32_t> x = chosen_set(t, tok, from), y = chosen_set(t, tok, to);
        for (int32_t i : x)
            for (int32_t j : y) {
                joint[size_t(i) * E + size_t(j)] += 1.0;
                a[size_t(i)] += 1.0;
                b[size_t(j)] += 1.0;
                n += 1.0;
            }
    }
    LayerPairStats s;
    s.from = t.layers[from];
    s.to = t.layers[to];
    s.to_entropy_bits = entropy_bits(b);
    for (size_t i = 0; i < E; ++i)
        for (size_t j = 0; j < E; ++j) {
            const double p = joint[i * E + j];
            if (p > 0) s.mutual_info_bits += p / n * std::log2(p * n / (a[i] * b[j]));
        }
    return s;
}

}  // namespace

PredictionStats prediction_stats(const RouteTraceData &t, int32_t ahead, const PrefetchRule &rule,
                                 int64_t first_token, int64_t end_token) {
    PredictionStats s;
    s.ahead = ahead;
    std::vector<int32_t> guess;
    for (int64_t tok = std::max<int64_t>(first_token, 0); tok < std::min(end_token, t.n_tokens); ++tok)
        for (size_t slot = 0; slot < t.n_slots(); ++slot) {
            const size_t g = t.guess_at(ahead, tok, slot);
            if (t.guesses[g] < 0) continue;
            std::vector<int32_t> previous;
            if (tok > 0) previous = chosen_set(t, tok - 1, slot);
            guess.clear();
            select_prefetch(rule, std::span(t.guesses).subspan(g, size_t(t.k)),
                            std::span(t.guess_weights).subspan(g, size_t(t.k)), previous, guess);
            std::ranges::sort(guess);
            guess.erase(std::unique(guess.begin(), guess.end()), guess.end());
            const std::vector<int32_t> chosen = chosen_set(t, tok, slot);
            s.guessed += guess.size();
            s.chosen += chosen.size();
            for (int32_t e : guess)
                if (std::ranges::binary_search(chosen, e)) ++s.correct;
        }
    return s;
}

RoutingStats routing_stats(const RouteTraceData &t) {
    RoutingStats s;
    for (size_t slot = 0; slot < t.n_slots(); ++slot) s.layers.push_back(layer_stats(t, slot));
    for (size_t slot = 0; slot + 1 < t.n_slots(); ++slot) s.pairs.push_back(pair_stats(t, slot, slot + 1));
    for (int32_t a = 1; a <= t.predict_ahead; ++a) s.predictions.push_back(prediction_stats(t, a, PrefetchRule{}));
    return s;
}

}  // namespace mst
