// A learned eviction policy for the routing-trace replay, in the spirit of "learning relaxed
// Belady" (Song et al., NSDI 2020): at each eviction every resident expert is scored by a
// small model of how soon its layer will ask for it again, fitted on a trace's past, and the
// lowest goes. The history policies (lru, lfu, lrfu) each rank by one fixed rule; Belady's
// edge on trained routing lies in reuses 2-64 tokens away among experts of middling
// popularity (bench/RESULTS.md, issue 19 third round), which a rule fitted to several
// history signals at once might see where no single one does.
//
// Replay only (bench_routing learned): the weights are fitted per trace, on one half or one
// text, and measured on the other.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "experts/cache_replay.h"
#include "experts/eviction_policy.h"
#include "experts/expert_key.h"

namespace mst {

// Half-lives, in tokens of the expert's layer, of the decayed use counts.
inline constexpr std::array<int32_t, 5> kReuseHalfLives = {2, 8, 32, 128, 512};
// The features of one (layer, expert), in this order: log2(0.01 + decayed uses) at each
// half-life; log2(1 + tokens since the last use); log2 of the gaps between the last four
// uses (LRB's "deltas": how this expert's reuse has been spaced); uses in the last 16 tokens;
// log2(1e-4 + the expert's share of its layer's uses so far); the router's score of it at the
// layer's latest token (0 when not in the recorded top M); 1 when chosen at the layer's latest
// token; how often it followed the experts chosen at the layer's latest token (ReuseAffinity;
// 0 without one).
inline constexpr size_t kReuseGaps = 3;
inline constexpr size_t kReuseFeatures = kReuseHalfLives.size() + kReuseGaps + 6;
using ReuseFeatureRow = std::array<float, kReuseFeatures>;
std::vector<std::string> reuse_feature_names();

// How often each expert of a layer follows another: at(layer, a, b) = the share of the tokens
// choosing a after which b is chosen within the next `window` tokens, fitted on a trace
// segment. Consecutive tokens' routing is correlated beyond popularity: the experts a token
// chooses say which others the next tokens want, which an expert's own history does not.
struct ReuseAffinity {
    int32_t window = 0;
    int32_t n_experts = 0;
    std::unordered_map<int32_t, std::vector<float>> by_layer;  // [a][b]
    float at(int32_t layer, int32_t a, int32_t b) const;
};
ReuseAffinity fit_reuse_affinity(const std::vector<std::vector<ExpertKey>> &groups, size_t n_slots, int32_t n_experts,
                                 int32_t window);

// Tracks the features online, from lookups (and router scores) alone. A layer's time is its
// lookups / `lookups_per_token` (k: each token looks up its k experts of each layer once),
// so the tracker needs no signal of where a token starts, as EvictionPolicy gives none.
class ReuseFeatures {
public:
    // `online_window` > 0: the follows feature comes from counts kept online, of the experts
    // chosen within that many tokens after each other so far, in place of `affinity`.
    explicit ReuseFeatures(int32_t lookups_per_token, const ReuseAffinity *affinity = nullptr,
                           int32_t online_window = 0)
        : k_(lookups_per_token > 0 ? lookups_per_token : 1), affinity_(affinity), online_(online_window) {}
    // A lookup of `key`, hit or miss.
    void lookup(const ExpertKey &key);
    // The router scored `key` for the token its layer is about to look up (decode_router_scores).
    void router_score(const ExpertKey &key, float score);
    ReuseFeatureRow features(const ExpertKey &key) const;
    // The token of the layer's latest lookup (-1 before the first).
    int64_t token(int32_t layer) const;

private:
    static constexpr int64_t kNever = -(int64_t(1) << 40);
    struct Expert {
        std::array<float, kReuseHalfLives.size()> decayed{};  // as of last_use
        int64_t last_use = kNever;
        uint64_t recent = 0;  // bit i: used at token last_use - i
        std::array<int64_t, kReuseGaps> earlier{kNever, kNever, kNever};  // the uses before last_use, latest first
        uint64_t uses = 0;
        float score = 0.0f;
        int64_t scored_token = kNever;
    };
    struct Layer {
        uint64_t lookups = 0;
        uint64_t uses = 0;
        int64_t chosen_token = -1;
        std::vector<int32_t> chosen;  // the experts looked up at chosen_token
        std::vector<std::vector<int32_t>> before;  // online: the chosen of the previous tokens, latest first
        std::vector<int32_t> preceding;            // online: their union
        std::unordered_map<uint64_t, float> follows;  // online: (a << 32 | b) -> times b came after a
        std::unordered_map<int32_t, float> times;     // online: times a was chosen
    };
    int32_t k_;
    const ReuseAffinity *affinity_;
    int32_t online_;
    std::unordered_map<ExpertKey, Expert, ExpertKeyHash> experts_;
    std::unordered_map<int32_t, Layer> layers_;
};

// A score over standardized features: higher = needed sooner. Fitted either as a logistic
// model of "looked up again within `window` tokens of its layer", or (window 0) by least
// squares on -log2(tokens to the next use), capped at kReuseHorizon. Linear, or (hidden > 0)
// a two-layer perceptron with that many ReLU units, for interactions a linear score cannot
// weigh (a long gap matters less for a popular expert).
struct EvictionModel {
    int32_t window = 0;
    ReuseFeatureRow mean{}, scale{};
    std::array<double, kReuseFeatures + 1> weights{};  // linear; the last is the intercept
    int32_t hidden = 0;
    std::vector<double> layer1;  // [hidden][kReuseFeatures + 1], the last of each its bias
    std::vector<double> layer2;  // [hidden + 1], the last the output's bias
    std::shared_ptr<const ReuseAffinity> affinity;  // what the features were computed with, if any
    int32_t online_follows = 0;                     // or the online follows window (ReuseFeatures)
    double score(const ReuseFeatureRow &x) const;
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

// Evicts the resident the model scores lowest; admits a miss only when it scores above the
// victim (as lrfu-admit does with its decayed counts).
std::unique_ptr<EvictionPolicy> make_learned_policy(const EvictionModel &model, int32_t lookups_per_token);

}  // namespace mst
