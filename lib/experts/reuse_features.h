// What the learned eviction policy ("learned", eviction_learned.cpp) knows of each expert:
// features of its reuse, tracked online from the cache's lookups alone. Belady's edge on
// trained routing lies in reuses 2-64 tokens away among experts of middling popularity
// (bench/RESULTS.md, issue 19 third round); a score fitted to several history signals at
// once, and to which experts follow the ones chosen now, sees some of it where no single
// rule does (issue 19, eighth and tenth rounds). bench_routing learned fits its models on
// these same features (bench/learned_eviction.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "experts/expert_key.h"

namespace mst {

// Half-lives, in tokens of the expert's layer, of the decayed use counts.
inline constexpr std::array<int32_t, 5> kReuseHalfLives = {2, 8, 32, 128, 512};
// The features of one (layer, expert), in this order: log2(0.01 + decayed uses) at each
// half-life; log2(1 + tokens since the last use); log2 of the gaps between the last four
// uses (LRB's "deltas": how this expert's reuse has been spaced); uses in the last 16 tokens;
// log2(1e-4 + the expert's share of its layer's uses so far); the router's score of it at the
// layer's latest token (0 when not scored); 1 when chosen at the layer's latest token; how
// often it followed the experts chosen at the layer's latest token (0 without follows).
inline constexpr size_t kReuseGaps = 3;
inline constexpr size_t kReuseFeatures = kReuseHalfLives.size() + kReuseGaps + 6;
inline constexpr size_t kReuseScoreFeature = kReuseHalfLives.size() + kReuseGaps + 3;
inline constexpr size_t kReuseFollowsFeature = kReuseFeatures - 1;
using ReuseFeatureRow = std::array<float, kReuseFeatures>;
std::vector<std::string> reuse_feature_names();

// A fixed table of how often expert b of a layer follows expert a (the share of a's tokens
// after which b is chosen soon), in place of the counts kept online: bench_routing fits one
// on a trace segment to compare with them.
class ReuseFollows {
public:
    virtual ~ReuseFollows() = default;
    virtual float at(int32_t layer, int32_t a, int32_t b) const = 0;
};

// Tracks the features online. A layer's time is its lookups / `lookups_per_token` (k: each
// token looks up its k experts of each layer once), so the tracker needs no signal of where
// a token starts, which EvictionPolicy does not give.
class ReuseFeatures {
public:
    // `follows_window` > 0: the follows feature comes from counts kept online, of the
    // experts chosen within that many tokens after each other so far; else from `fitted`,
    // if any.
    explicit ReuseFeatures(int32_t lookups_per_token, const ReuseFollows *fitted = nullptr, int32_t follows_window = 0)
        : k_(lookups_per_token > 0 ? lookups_per_token : 1), fitted_(fitted), window_(follows_window) {}
    // Before the first lookup (the cache learns k from the model after it made its policy).
    void set_lookups_per_token(int32_t k) { k_ = k > 0 ? k : 1; }
    // A lookup of `key`, hit or miss.
    void lookup(const ExpertKey &key);
    // The router scored `key` for the token its layer is about to look up.
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
    // The online follows counts of a layer: dense n x n (n: one past the highest expert id
    // seen), so their memory is bounded by the layer's experts, not the text's length (a
    // DeepSeek-V3-sized layer of 256 experts: 256 KiB). A row's counts halve when its expert
    // was chosen kHalveAt times: floats keep counting exactly, and the ratio stays.
    struct Follows {
        int32_t n = 0;
        std::vector<float> counts;  // [a * n + b]: times b was chosen within the window after a
        std::vector<float> times;   // [a]: times a was chosen
        void grow(int32_t experts);
        float share(int32_t a, int32_t b) const;
    };
    struct Layer {
        uint64_t lookups = 0;
        uint64_t uses = 0;
        int64_t chosen_token = -1;
        std::vector<int32_t> chosen;               // the experts looked up at chosen_token
        std::vector<std::vector<int32_t>> before;  // online: the chosen of the previous tokens, latest first
        std::vector<int32_t> preceding;            // online: their union
        Follows follows;
    };
    int32_t k_;
    const ReuseFollows *fitted_;
    int32_t window_;
    std::unordered_map<ExpertKey, Expert, ExpertKeyHash> experts_;
    std::unordered_map<int32_t, Layer> layers_;
};

}  // namespace mst
