// Cache-aware routing (substitution): a chosen expert that is not in memory is replaced by
// one that is, when the router scored that one nearly as high. The token still gets k
// experts and the same weights, one disk read fewer; what it costs in quality is measured in
// bench/RESULTS.md ("Cache-aware substitution"). Off by default.
#pragma once

#include <cstdint>
#include <functional>

namespace mst {

// ids, weights: [n_tokens][k], the router's top-k (after which the budget rules apply).
// candidates, candidate_weights: [n_tokens][k2], the same router's top-k2 (k2 > k) for the
// same rows; only the ratio of two candidates' weights is used, so it does not matter
// whether they were renormalised over k2. For each token, every chosen expert but the
// top-weighted one that is not `resident` is replaced by the resident candidate ranked
// below the top-k with the highest weight, if that weight is at least `min_ratio` times the
// missing expert's (the most heavily weighted missing expert is served first; a candidate
// replaces one expert at most). The substitute takes the missing expert's weight. Returns the
// number of experts replaced.
uint64_t substitute_cached_experts(float min_ratio, int64_t n_tokens, int32_t k, int32_t *ids, const float *weights,
                                   int32_t k2, const int32_t *candidates, const float *candidate_weights,
                                   const std::function<bool(int32_t expert)> &resident);

}  // namespace mst
