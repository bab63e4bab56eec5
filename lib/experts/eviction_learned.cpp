// "learned": evicts the resident a fitted model (reuse_model.h) scores as needed latest,
// over features of each expert's reuse tracked online (reuse_features.h), in the spirit of
// "learning relaxed Belady" (Song et al., NSDI 2020); admits a miss only when it scores
// above the victim, as lrfu-admit does with its decayed counts. The library runs weights
// fitted offline (shipped_reuse_model); bench_routing learned runs its own fits through
// the same class.
#include <limits>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "experts/eviction_policies.h"
#include "experts/reuse_features.h"

namespace mst {

namespace {

class LearnedPolicy final : public EvictionPolicy {
public:
    LearnedPolicy(ReuseModel model, int32_t follows_window, std::shared_ptr<const ReuseFollows> fitted)
        : model_(std::move(model)), fitted_(std::move(fitted)), features_(1, fitted_.get(), follows_window) {}
    const char *name() const override { return "learned"; }
    // The time of the features is tokens: lookups / k.
    void set_lookups_per_token(int32_t k) override { features_.set_lookups_per_token(k); }
    bool wants_router_scores() const override { return model_.scale[kReuseScoreFeature] > 0.0f; }
    void on_router_score(const ExpertKey &key, float score) override {
        features_.router_score(key, score);
        ++layers_[key.layer].clock;
    }
    void on_hit(const ExpertKey &key) override { touch(key); }
    void on_miss(const ExpertKey &key) override { touch(key); }
    void on_insert(const ExpertKey &key) override {
        Layer &l = layers_[key.layer];
        index_[key] = l.residents.size();
        l.residents.push_back({key, model_.score(features_.features(key))});
    }
    ExpertKey victim(const ExpertKey &) override {
        // An expert's features move only when its own layer looks something up or is scored,
        // so only those layers' residents are scored again: in decode order, one layer between
        // two victims, and one scoring serves every eviction of that layer's misses.
        const Resident *lowest = nullptr;
        for (auto &[layer, l] : layers_) {
            if (l.scored_at != l.clock) {
                for (Resident &r : l.residents) r.score = model_.score(features_.features(r.key));
                l.scored_at = l.clock;
            }
            for (const Resident &r : l.residents)
                if (!lowest || r.score < lowest->score) lowest = &r;
        }
        return lowest->key;
    }
    // victim() just scored the victim's layer as of now.
    bool admit(const ExpertKey &incoming, const ExpertKey &victim) override {
        return model_.score(features_.features(incoming)) > layers_.at(victim.layer).residents[index_.at(victim)].score;
    }
    void on_evict(const ExpertKey &key) override {
        std::vector<Resident> &rs = layers_.at(key.layer).residents;
        const size_t i = index_.at(key);
        index_.erase(key);
        if (i + 1 != rs.size()) {
            rs[i] = rs.back();
            index_[rs[i].key] = i;
        }
        rs.pop_back();
    }

private:
    struct Resident {
        ExpertKey key;
        double score = 0.0;
    };
    struct Layer {
        uint64_t clock = 0, scored_at = std::numeric_limits<uint64_t>::max();
        std::vector<Resident> residents;
    };

    void touch(const ExpertKey &key) {
        features_.lookup(key);
        ++layers_[key.layer].clock;
    }

    ReuseModel model_;
    std::shared_ptr<const ReuseFollows> fitted_;  // held for features_
    ReuseFeatures features_;
    std::map<int32_t, Layer> layers_;
    std::unordered_map<ExpertKey, size_t, ExpertKeyHash> index_;  // within its layer's residents
};

}  // namespace

std::unique_ptr<EvictionPolicy> make_learned_policy(ReuseModel model, int32_t follows_window,
                                                    std::shared_ptr<const ReuseFollows> fitted) {
    return std::make_unique<LearnedPolicy>(std::move(model), follows_window, std::move(fitted));
}

}  // namespace mst
