// Fitting a learned eviction policy for the routing-trace replay, in the spirit of "learning
// relaxed Belady" (Song et al., NSDI 2020): the library's "learned" policy
// (lib/experts/eviction_learned.cpp) scores every resident expert by a small model of how soon
// its layer will ask for it again, over features tracked online (experts/reuse_features.h),
// and evicts the lowest. Here the models are fitted on a trace's past: on one half or one
// text, measured on the other (bench_routing learned), and the library's shipped weights are
// fitted (bench_routing learned --export).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "experts/cache_replay.h"
#include "experts/eviction_policy.h"
#include "experts/expert_key.h"
#include "experts/reuse_features.h"
#include "experts/reuse_model.h"

namespace mst {

// How often each expert of a layer follows another: at(layer, a, b) = the share of the tokens
// choosing a after which b is chosen within the next `window` tokens, fitted on a trace
// segment. Consecutive tokens' routing is correlated beyond popularity: the experts a token
// chooses say which others the next tokens want, which an expert's own history does not.
struct ReuseAffinity final : ReuseFollows {
    int32_t window = 0;
    int32_t n_experts = 0;
    std::unordered_map<int32_t, std::vector<float>> by_layer;  // [a][b]
    float at(int32_t layer, int32_t a, int32_t b) const override;
};
ReuseAffinity fit_reuse_affinity(const std::vector<std::vector<ExpertKey>> &groups, size_t n_slots, int32_t n_experts,
                                 int32_t window);

// A fitted ReuseModel and what it was fitted for: either a logistic model of "looked up
// again within `window` tokens of its layer", or (window 0) least squares on -log2(tokens to
// the next use), capped at kReuseHorizon.
struct EvictionModel : ReuseModel {
    int32_t window = 0;
    std::shared_ptr<const ReuseAffinity> affinity;  // what the features were computed with, if any
    int32_t online_follows = 0;                     // or the online follows window (ReuseFeatures)
    std::string name() const;
};
inline constexpr uint32_t kReuseHorizon = 512;

// Feature rows sampled from a replay of `groups` (decode_accesses order, `n_slots` groups a
// token): after each group, every expert of that group's layer, at every `stride`-th token
// of that layer, with the tokens to its next lookup in `groups` (0 = none before the end;
// rows whose horizon runs past the end without a next use are left out, as unknowable).
struct ReuseTrainingSet {
    std::vector<ReuseFeatureRow> rows;
    std::vector<uint32_t> next;
    std::shared_ptr<const ReuseAffinity> affinity;  // passed on to the models fitted on the set
    int32_t online_follows = 0;                     // likewise
};
ReuseTrainingSet reuse_training_set(const std::vector<std::vector<ExpertKey>> &groups, const RouterScores *scores,
                                    size_t n_slots, int32_t n_experts, int32_t k, size_t stride,
                                    std::shared_ptr<const ReuseAffinity> affinity = nullptr, int32_t online_follows = 0);

// Fits the model on `set` (window > 0: logistic by Newton's method; 0: least squares), with
// a small ridge so that a constant feature (no router scores) gets weight 0. `use_scores`
// false leaves the router-score feature out (weight 0), `use_follows` false the affinity one.
EvictionModel fit_eviction_model(const ReuseTrainingSet &set, int32_t window, bool use_scores, bool use_follows = true);
// The same objective on a two-layer perceptron of `hidden` ReLU units, by Adam over shuffled
// minibatches for `epochs` passes (seeded: the same set gives the same model).
EvictionModel fit_eviction_mlp(const ReuseTrainingSet &set, int32_t window, bool use_scores, int32_t hidden,
                               int32_t epochs, bool use_follows = true);

// The library's learned policy running `model` (the replay tells it k).
std::unique_ptr<EvictionPolicy> make_learned_policy(const EvictionModel &model);

}  // namespace mst
