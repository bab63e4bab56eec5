#include "router/budget_policy.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace mst {

void validate_budget_policy(const BudgetPolicy &p) {
    auto check = [](float v, const char *name) {
        if (!(v >= 0.0f && v <= 1.0f)) fail(MST_ERR_INVALID_ARGUMENT, "expert budget {} must be in [0, 1], got {}", name, v);
    };
    check(p.min_weight, "min_weight");
    check(p.mass, "mass");
    check(p.cache_skip_below, "cache_skip_below");
    check(p.substitute_min_ratio, "cache_substitute");
}

void apply_budget_policy(const BudgetPolicy &policy, int64_t n_tokens, int32_t k, int32_t *ids, float *weights,
                         bool renormalized, const std::function<bool(int32_t expert)> &resident, BudgetStats &stats) {
    stats.experts_chosen += uint64_t(n_tokens) * uint64_t(k);
    if (!policy.active()) return;
    std::vector<int32_t> order(static_cast<size_t>(k));
    std::vector<bool> keep(static_cast<size_t>(k));
    for (int64_t t = 0; t < n_tokens; ++t) {
        int32_t *id = ids + t * k;
        float *w = weights + t * k;
        const float total = std::accumulate(w, w + k, 0.0f);
        if (!(total > 0.0f)) continue;  // nothing to judge by: leave the router's choice
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return w[a] > w[b]; });

        float mass_so_far = 0.0f;
        for (int32_t r = 0; r < k; ++r) {
            const int32_t j = order[size_t(r)];
            const float share = w[j] / total;
            bool kept = true;
            if (r > 0) {  // the top expert always runs
                if (share < policy.min_weight) kept = false;
                if (policy.mass < 1.0f && mass_so_far >= policy.mass) kept = false;
                if (share < policy.cache_skip_below && !resident(id[j])) kept = false;
            }
            keep[size_t(j)] = kept;
            mass_so_far += share;
        }
        float kept_sum = 0.0f;
        for (int32_t j = 0; j < k; ++j) {
            if (keep[size_t(j)]) {
                kept_sum += w[j];
                continue;
            }
            ++stats.experts_skipped;
            stats.skipped_mass += double(w[j] / total);
            id[j] = -1;
        }
        if (renormalized && kept_sum > 0.0f)
            for (int32_t j = 0; j < k; ++j)
                w[j] = keep[size_t(j)] ? w[j] * (total / kept_sum) : 0.0f;
        else
            for (int32_t j = 0; j < k; ++j)
                if (!keep[size_t(j)]) w[j] = 0.0f;
    }
}

}  // namespace mst
