#include "experts/prefetch_rule.h"

#include <algorithm>
#include <numeric>

namespace mst {

PrefetchRule default_prefetch_rule() { return PrefetchRule{0.14f, 0.14f, 0}; }

void select_prefetch(const PrefetchRule &rule, std::span<const int32_t> ids, std::span<const float> weights,
                     std::span<const int32_t> previous, std::vector<int32_t> &out) {
    std::vector<size_t> order;
    double sum = 0.0;
    for (size_t j = 0; j < ids.size(); ++j)
        if (ids[j] >= 0) {
            order.push_back(j);
            sum += double(weights[j]);
        }
    std::ranges::stable_sort(order, [&](size_t a, size_t b) { return weights[a] > weights[b]; });
    int32_t kept = 0;
    for (size_t j : order) {
        if (rule.max_experts > 0 && kept >= rule.max_experts) break;
        const double share = sum > 0.0 ? double(weights[j]) / sum : 1.0;
        const bool reused = std::ranges::find(previous, ids[j]) != previous.end();
        if (share < double(reused ? std::min(rule.reuse_min_share, rule.min_share) : rule.min_share)) continue;
        out.push_back(ids[j]);
        ++kept;
    }
}

}  // namespace mst
