#include "router/sigmoid_group_topk.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace mst {

void route_sigmoid_group_topk(const float *logits, const float *correction_bias, int64_t n_tokens,
                              const GroupTopkParams &p, int32_t *ids, float *weights) {
    if (p.n_experts < 1 || p.k < 1 || p.k > p.n_experts || p.n_group < 1 || p.n_experts % p.n_group != 0 ||
        p.topk_group < 1 || p.topk_group > p.n_group)
        fail(MST_ERR_INVALID_ARGUMENT,
             "group top-k routing: bad parameters (experts {}, k {}, n_group {}, topk_group {})", p.n_experts, p.k,
             p.n_group, p.topk_group);
    const int32_t E = p.n_experts, per_group = E / p.n_group;
    constexpr float kExcluded = -std::numeric_limits<float>::infinity();
    std::vector<float> scores(static_cast<size_t>(E)), choice(static_cast<size_t>(E)),
        group_scores(static_cast<size_t>(p.n_group));
    std::vector<int32_t> experts(static_cast<size_t>(E)), groups(static_cast<size_t>(p.n_group));
    std::vector<char> eligible(static_cast<size_t>(p.n_group));

    for (int64_t t = 0; t < n_tokens; ++t) {
        const float *row = logits + t * E;
        for (int32_t e = 0; e < E; ++e) {
            scores[size_t(e)] = 1.0f / (1.0f + std::exp(-row[e]));
            choice[size_t(e)] = scores[size_t(e)] + (correction_bias ? correction_bias[e] : 0.0f);
        }
        // A group's score: the sum of its two best biased scores (its one, for groups of one).
        for (int32_t g = 0; g < p.n_group; ++g) {
            float best = kExcluded, second = kExcluded;
            for (int32_t e = g * per_group; e < (g + 1) * per_group; ++e) {
                const float s = choice[size_t(e)];
                if (s > best) {
                    second = best;
                    best = s;
                } else if (s > second) {
                    second = s;
                }
            }
            group_scores[size_t(g)] = per_group > 1 ? best + second : best;
        }
        std::iota(groups.begin(), groups.end(), 0);
        std::partial_sort(groups.begin(), groups.begin() + p.topk_group, groups.end(), [&](int32_t a, int32_t b) {
            return group_scores[size_t(a)] != group_scores[size_t(b)]
                       ? group_scores[size_t(a)] > group_scores[size_t(b)]
                       : a < b;
        });
        std::fill(eligible.begin(), eligible.end(), 0);
        for (int32_t j = 0; j < p.topk_group; ++j) eligible[size_t(groups[size_t(j)])] = 1;

        // Excluded experts rank below every eligible one and among themselves by id.
        const auto key = [&](int32_t e) { return eligible[size_t(e / per_group)] ? choice[size_t(e)] : kExcluded; };
        std::iota(experts.begin(), experts.end(), 0);
        std::partial_sort(experts.begin(), experts.begin() + p.k, experts.end(), [&](int32_t a, int32_t b) {
            const float ka = key(a), kb = key(b);
            return ka != kb ? ka > kb : a < b;
        });
        float sum = 0.0f;
        for (int32_t j = 0; j < p.k; ++j) sum += scores[size_t(experts[size_t(j)])];
        // The reference adds 1e-20 to the denominator; it only matters for all-zero scores.
        const float denominator = sum + 1e-20f;
        for (int32_t j = 0; j < p.k; ++j) {
            const int32_t e = experts[size_t(j)];
            const float w = p.normalize ? scores[size_t(e)] / denominator : scores[size_t(e)];
            ids[t * p.k + j] = e;
            weights[t * p.k + j] = w * p.scaling;
        }
    }
}

}  // namespace mst
