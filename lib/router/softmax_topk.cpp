#include "router/softmax_topk.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace mst {

void route_softmax_topk(const float *logits, int64_t n_tokens, int32_t n_experts, int32_t k, bool renormalize,
                        int32_t *ids, float *weights) {
    std::vector<float> probs(static_cast<size_t>(n_experts));
    std::vector<int32_t> order(static_cast<size_t>(n_experts));
    for (int64_t t = 0; t < n_tokens; ++t) {
        const float *row = logits + t * n_experts;
        const float max_logit = *std::max_element(row, row + n_experts);
        float sum = 0.0f;
        for (int32_t e = 0; e < n_experts; ++e) sum += probs[size_t(e)] = std::exp(row[e] - max_logit);
        for (float &p : probs) p /= sum;

        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
            return probs[size_t(a)] != probs[size_t(b)] ? probs[size_t(a)] > probs[size_t(b)] : a < b;
        });
        float kept = 0.0f;
        for (int32_t j = 0; j < k; ++j) kept += probs[size_t(order[size_t(j)])];
        for (int32_t j = 0; j < k; ++j) {
            ids[t * k + j] = order[size_t(j)];
            weights[t * k + j] = renormalize ? probs[size_t(order[size_t(j)])] / kept : probs[size_t(order[size_t(j)])];
        }
    }
}

}  // namespace mst
