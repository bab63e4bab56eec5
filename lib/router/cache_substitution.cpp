#include "router/cache_substitution.h"

#include <algorithm>
#include <numeric>
#include <vector>

namespace mst {

uint64_t substitute_cached_experts(float min_ratio, int64_t n_tokens, int32_t k, int32_t *ids, const float *weights,
                                   int32_t k2, const int32_t *candidates, const float *candidate_weights,
                                   const std::function<bool(int32_t expert)> &resident) {
    if (!(min_ratio > 0.0f) || k2 <= k) return 0;
    uint64_t replaced = 0;
    std::vector<int32_t> order(static_cast<size_t>(k));
    std::vector<int32_t> spare;
    for (int64_t t = 0; t < n_tokens; ++t) {
        int32_t *id = ids + t * k;
        const float *w = weights + t * k;
        const int32_t *cand = candidates + t * k2;
        const float *cand_w = candidate_weights + t * k2;
        auto score_of = [&](int32_t expert) {
            for (int32_t j = 0; j < k2; ++j)
                if (cand[j] == expert) return cand_w[j];
            return -1.0f;  // not among the candidates: nothing to compare with
        };
        // The candidates below the top-k that are in memory, best first.
        spare.clear();
        for (int32_t j = 0; j < k2; ++j)
            if (cand[j] >= 0 && std::find(id, id + k, cand[j]) == id + k && resident(cand[j])) spare.push_back(j);
        if (spare.empty()) continue;
        std::ranges::stable_sort(spare, [&](int32_t a, int32_t b) { return cand_w[a] > cand_w[b]; });
        std::iota(order.begin(), order.end(), 0);
        std::ranges::stable_sort(order, [&](int32_t a, int32_t b) { return w[a] > w[b]; });
        size_t next_spare = 0;
        for (int32_t r = 1; r < k && next_spare < spare.size(); ++r) {  // the top expert always runs as chosen
            const int32_t j = order[size_t(r)];
            if (id[j] < 0 || resident(id[j])) continue;
            const int32_t sub = spare[next_spare];
            const float missing = score_of(id[j]);
            if (missing < 0.0f || cand_w[sub] < min_ratio * missing) continue;  // a lower slot may still take it
            id[j] = cand[sub];
            ++next_spare;
            ++replaced;
        }
    }
    return replaced;
}

}  // namespace mst
