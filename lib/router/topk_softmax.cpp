#include "router/topk_softmax.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace mst {

void route_topk_softmax(const float *logits, int64_t n_tokens, int32_t n_experts, int32_t k, int32_t *ids,
                        float *weights) {
    std::vector<int32_t> order(static_cast<size_t>(n_experts));
    for (int64_t t = 0; t < n_tokens; ++t) {
        const float *row = logits + t * n_experts;
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + k, order.end(),
                          [&](int32_t a, int32_t b) { return row[a] != row[b] ? row[a] > row[b] : a < b; });
        // The first kept logit is the largest: subtracting it keeps every exp <= 1.
        const float max_logit = row[order[0]];
        float sum = 0.0f;
        for (int32_t j = 0; j < k; ++j) sum += weights[t * k + j] = std::exp(row[order[size_t(j)]] - max_logit);
        for (int32_t j = 0; j < k; ++j) {
            ids[t * k + j] = order[size_t(j)];
            weights[t * k + j] /= sum;
        }
    }
}

}  // namespace mst
