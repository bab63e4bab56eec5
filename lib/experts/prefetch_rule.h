// Which of the predictor's guesses are worth reading ahead. The predictor (the next layer's
// router on the current hidden state) always names k experts, but on trained routers only
// 60-72 % of them are then chosen (bench/RESULTS.md); a wrong guess costs disk time and cache
// room. The router's own weights say how sure each guess is, and an expert the previous token
// chose at that layer is likelier to come back (temporal locality), so the rule reads a guess
// when its share of the guessed weight is high enough, with a lower bar for such a reuse.
// The same function decides at run time (ExpertPrefetcher) and in the trace replay
// (bench_routing), so the precision and recall measured are those the engine gets.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace mst {

struct PrefetchRule {
    // Read a guess whose weight / (sum of the k guessed weights) is at least this (0 = all).
    float min_share = 0.0f;
    // A guess the previous token also chose at that layer needs only this share (kept at or
    // below min_share).
    float reuse_min_share = 0.0f;
    // Read at most this many guesses, the highest weights first (0 = no cap).
    int32_t max_experts = 0;
};

// The default, chosen on the trained models' traces (bench/RESULTS.md, "Prefetch: a
// confidence rule"): the highest recall whose precision one layer ahead reached 85 % on the
// first half of the held-out text of all three models.
PrefetchRule default_prefetch_rule();

// Appends to `out` the guesses `ids` (weights alike, -1 = none) the rule keeps, highest
// weight first. `previous` holds the experts the previous token chose at the guessed layer
// (empty: unknown). Guesses without weights (all 0) count as equally sure.
void select_prefetch(const PrefetchRule &rule, std::span<const int32_t> ids, std::span<const float> weights,
                     std::span<const int32_t> previous, std::vector<int32_t> &out);

}  // namespace mst
