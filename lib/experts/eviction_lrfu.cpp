// LRFU (Lee et al., IEEE Trans. Computers 2001), a frequency-weighted LRU: every access
// adds 1 to an expert's score and the score halves every `half_life` accesses, so an
// expert ranks by how often it was used, counting recent uses most. Evicts the lowest
// score. Routing of a trained model has both kinds of locality: some experts are chosen
// far more than others (LFU's strength) and a token often reuses the previous tokens'
// experts (LRU's); on the trained models' traces it comes closest to Belady's bound
// (bench/RESULTS.md "Cache policies on trained routing").
//
// score(now) = crf * 2^(-(now - last) / H), and comparing two experts' scores at any one
// `now` is comparing log2(crf) + last / H, which does not change as time passes: the
// residents sit in one ordered set keyed by it, updated only when an expert is accessed.
// Scores survive eviction (like LFU's counts), so a popular expert comes back ranked.
//
// "lrfu-soft" also credits the router's soft scores: an expert that scored just below the
// top-k may be chosen soon, which the hard picks alone do not show (bench/RESULTS.md "Router
// scores as a reuse signal"). A score adds to crf at the current time without advancing it:
// time counts accesses, as in lrfu.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <unordered_map>

#include "experts/eviction_policies.h"

namespace mst {

namespace {

class LrfuPolicy final : public EvictionPolicy {
public:
    LrfuPolicy(double half_life_per_capacity, bool admission, double soft_credit)
        : per_capacity_(half_life_per_capacity), admission_(admission), soft_credit_(soft_credit) {}
    const char *name() const override {
        return soft_credit_ > 0.0 ? "lrfu-soft" : admission_ ? "lrfu-admit" : "lrfu";
    }
    bool wants_router_scores() const override { return soft_credit_ > 0.0; }
    void on_router_score(const ExpertKey &key, float score) override {
        if (soft_credit_ > 0.0 && score > 0.0f) add(key, soft_credit_ * double(score), false);
    }
    void set_capacity(size_t experts) override {
        half_life_ = std::max(1.0, per_capacity_ * double(std::max<size_t>(experts, 1)));
    }

    void on_hit(const ExpertKey &key) override { add(key, 1.0, true); }
    void on_miss(const ExpertKey &key) override { add(key, 1.0, true); }
    void on_insert(const ExpertKey &key) override {
        Score &s = scores_[key];
        s.resident = true;
        resident_.insert({s.rank, key});
    }
    ExpertKey victim(const ExpertKey &) override { return resident_.begin()->second; }
    // Ranks compare scores at any one time; the incoming expert was scored by its miss.
    bool admit(const ExpertKey &incoming, const ExpertKey &victim) override {
        return !admission_ || scores_[incoming].rank > scores_.at(victim).rank;
    }
    void on_evict(const ExpertKey &key) override {
        Score &s = scores_.at(key);
        resident_.erase({s.rank, key});
        s.resident = false;
    }

private:
    struct Score {
        double crf = 0.0;   // the score at `last`
        double last = 0.0;  // access count when last touched
        double rank = -std::numeric_limits<double>::infinity();  // log2(crf) + last / H
        bool resident = false;
    };

    // An access (advance: time moves one step) or a router score adding `amount`.
    void add(const ExpertKey &key, double amount, bool advance) {
        Score &s = scores_[key];
        if (s.resident) resident_.erase({s.rank, key});
        if (advance) now_ += 1.0;
        s.crf = s.crf * std::exp2(-(now_ - s.last) / half_life_) + amount;
        s.last = now_;
        s.rank = std::log2(s.crf) + now_ / half_life_;
        if (s.resident) resident_.insert({s.rank, key});
    }

    double per_capacity_;
    bool admission_;
    double soft_credit_;  // added per unit of router score (0: hard picks only)
    double half_life_ = 64.0;
    double now_ = 0.0;
    std::unordered_map<ExpertKey, Score, ExpertKeyHash> scores_;
    std::set<std::pair<double, ExpertKey>> resident_;
};

}  // namespace

std::unique_ptr<EvictionPolicy> make_lrfu_policy(double half_life_per_capacity, bool admission,
                                                 double soft_weight) {
    return std::make_unique<LrfuPolicy>(half_life_per_capacity, admission, soft_weight);
}

}  // namespace mst
