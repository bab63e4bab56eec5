// Expert-budget policies applied after a router's top-k, each off by default. Weights
// are judged normalised over the token's top-k (w_j / sum of its k weights); the
// top-weighted expert always runs, so no policy can leave a token without experts.
//   min_weight:       drop experts whose normalised weight is below it.
//   mass:             keep the fewest experts (by weight) whose normalised weights sum
//                     to at least it; 1 keeps all.
//   cache_skip_below: skip an expert that is not in memory when its normalised weight is
//                     below it (trading a little quality for a disk read).
//   substitute_min_ratio: cache-aware routing (router/cache_substitution.h): an expert that
//                     is not in memory is replaced by a cached one ranked just below the
//                     top-k whose router weight is at least this times its own; 0 = off.
//                     Applied before the rules above.
// Dropped slots get id -1. When the model renormalises its top-k, the kept weights are
// rescaled to the sum the top-k had; otherwise they stay as the router gave them.
#pragma once

#include <cstdint>
#include <functional>

namespace mst {

struct BudgetPolicy {
    float min_weight = 0.0f;
    float mass = 1.0f;
    float cache_skip_below = 0.0f;
    float substitute_min_ratio = 0.0f;
    bool active() const { return min_weight > 0.0f || mass < 1.0f || cache_skip_below > 0.0f; }
};

struct BudgetStats {
    uint64_t experts_chosen = 0;   // slots the router filled (n_tokens * k)
    uint64_t experts_skipped = 0;  // of those, dropped by the policy
    uint64_t experts_substituted = 0;  // of those, replaced by a cached expert
    double skipped_mass = 0.0;     // sum over tokens of the normalised weight dropped
};

// Throws MST_ERR_INVALID_ARGUMENT for values outside [0, 1].
void validate_budget_policy(const BudgetPolicy &policy);

// ids, weights: [n_tokens][k]. resident(expert) says whether that expert of the layer is
// in memory (only consulted for cache_skip_below).
void apply_budget_policy(const BudgetPolicy &policy, int64_t n_tokens, int32_t k, int32_t *ids, float *weights,
                         bool renormalized, const std::function<bool(int32_t expert)> &resident, BudgetStats &stats);

}  // namespace mst
