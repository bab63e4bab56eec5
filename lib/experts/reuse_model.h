// A score of how soon an expert is needed again, over its reuse features (reuse_features.h):
// higher = sooner. The learned eviction policy evicts the lowest; bench_routing learned fits
// these models (bench/learned_eviction.h), the library runs one fitted there
// (shipped_reuse_model).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "experts/reuse_features.h"

namespace mst {

// Over standardized features ((x - mean) / scale; a feature of scale 0 is left out): linear,
// or (hidden > 0) a two-layer perceptron with that many ReLU units, for interactions a linear
// score cannot weigh (a long gap matters less for a popular expert).
struct ReuseModel {
    ReuseFeatureRow mean{}, scale{};
    std::array<double, kReuseFeatures + 1> weights{};  // linear; the last is the intercept
    int32_t hidden = 0;
    std::vector<double> layer1;  // [hidden][kReuseFeatures + 1], the last of each its bias
    std::vector<double> layer2;  // [hidden + 1], the last the output's bias
    double score(const ReuseFeatureRow &x) const;
};

// The weights the "learned" cache policy runs, fitted offline on one trained model's routing
// (eviction_learned_weights.cpp says which), and the follows window its features count online.
const ReuseModel &shipped_reuse_model();
inline constexpr int32_t kShippedFollowsWindow = 2;

}  // namespace mst
