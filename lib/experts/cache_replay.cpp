#include "experts/cache_replay.h"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "experts/eviction_policy.h"

namespace mst {

namespace {

// A cache of `capacity` experts run by an EvictionPolicy, doing what ExpertCache does
// with uniform expert sizes.
class PolicyCache {
public:
    PolicyCache(const std::string &policy, size_t capacity)
        : policy_(policy == "none" || capacity == 0 ? nullptr : make_eviction_policy(policy)), capacity_(capacity) {
        if (policy_) policy_->set_capacity(capacity);
    }
    void hint(const ExpertKey &key) {
        if (resident_.count(key)) policy_->on_hit(key);
    }
    bool find(const ExpertKey &key) {
        if (!resident_.count(key)) {
            if (policy_) policy_->on_miss(key);
            return false;
        }
        policy_->on_hit(key);
        return true;
    }
    void insert(const ExpertKey &key) {
        if (!policy_ || resident_.count(key)) return;
        for (bool first = true; resident_.size() >= capacity_; first = false) {
            const ExpertKey victim = policy_->victim(key);
            if (first && !policy_->admit(key, victim)) return;
            resident_.erase(victim);
            policy_->on_evict(victim);
        }
        resident_.insert(key);
        policy_->on_insert(key);
    }

private:
    std::unique_ptr<EvictionPolicy> policy_;
    size_t capacity_;
    std::unordered_set<ExpertKey, ExpertKeyHash> resident_;
};

// Per-layer capacities: one shared cache (key -1) or `capacity` split over the layers.
std::map<int32_t, size_t> capacities(const std::vector<std::vector<ExpertKey>> &groups, const ReplayOptions &o) {
    std::set<int32_t> layers;
    for (const auto &g : groups)
        for (const ExpertKey &k : g) layers.insert(k.layer);
    std::map<int32_t, size_t> out;
    if (!o.per_layer || layers.empty()) {
        out[-1] = o.capacity;
        return out;
    }
    size_t i = 0;
    for (int32_t l : layers) out[l] = o.capacity / layers.size() + (i++ < o.capacity % layers.size() ? 1 : 0);
    return out;
}

int32_t cache_of(const ReplayOptions &o, const ExpertKey &k) { return o.per_layer ? k.layer : -1; }

}  // namespace

std::vector<std::vector<ExpertKey>> decode_accesses(const RouteTraceData &t) {
    std::vector<std::vector<ExpertKey>> groups;
    groups.reserve(size_t(t.n_tokens) * t.n_slots());
    for (int64_t tok = 0; tok < t.n_tokens; ++tok)
        for (size_t s = 0; s < t.n_slots(); ++s) {
            std::vector<int32_t> ids(t.ids.begin() + ptrdiff_t(t.at(tok, s)), t.ids.begin() + ptrdiff_t(t.at(tok, s) + size_t(t.k)));
            std::ranges::sort(ids);  // ExpertStore fetches in ascending id
            ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
            std::vector<ExpertKey> g;
            for (int32_t e : ids)
                if (e >= 0) g.push_back(ExpertKey{t.layers[s], e});
            groups.push_back(std::move(g));
        }
    return groups;
}

std::vector<std::vector<ExpertKey>> decode_hints(const RouteTraceData &t, const PrefetchRule &rule) {
    std::vector<std::vector<ExpertKey>> hints(size_t(t.n_tokens) * t.n_slots());
    if (t.predict_ahead < 1) return hints;
    std::vector<int32_t> kept;
    for (int64_t tok = 0; tok < t.n_tokens; ++tok)
        for (size_t s = 0; s + 1 < t.n_slots(); ++s) {
            const size_t g = t.guess_at(1, tok, s + 1);
            std::vector<int32_t> previous;
            if (tok > 0)
                for (int32_t j = 0; j < t.k; ++j) previous.push_back(t.ids[t.at(tok - 1, s + 1) + size_t(j)]);
            kept.clear();
            select_prefetch(rule, std::span(t.guesses).subspan(g, size_t(t.k)),
                            std::span(t.guess_weights).subspan(g, size_t(t.k)), previous, kept);
            for (int32_t e : kept) hints[size_t(tok) * t.n_slots() + s].push_back(ExpertKey{t.layers[s + 1], e});
        }
    return hints;
}

ReplayResult replay_policy(const std::vector<std::vector<ExpertKey>> &groups, const std::string &policy,
                           const ReplayOptions &options) {
    std::map<int32_t, PolicyCache> caches;
    for (const auto &[layer, cap] : capacities(groups, options)) caches.emplace(layer, PolicyCache(policy, cap));
    ReplayResult r;
    std::vector<ExpertKey> missed;
    for (const auto &g : groups) {
        missed.clear();
        for (const ExpertKey &k : g) {
            if (caches.at(cache_of(options, k)).find(k)) {
                ++r.hits;
            } else {
                ++r.misses;
                missed.push_back(k);
            }
        }
        // The guesses for the next layer are made when this layer routes, before its reads
        // land and are inserted: the policy hears of them before it picks victims.
        if (options.hints)
            for (const ExpertKey &k : (*options.hints)[size_t(&g - groups.data())]) caches.at(cache_of(options, k)).hint(k);
        for (const ExpertKey &k : missed) caches.at(cache_of(options, k)).insert(k);
    }
    return r;
}

ReplayResult replay_belady(const std::vector<std::vector<ExpertKey>> &groups, const ReplayOptions &options) {
    std::vector<ExpertKey> seq;
    for (const auto &g : groups) seq.insert(seq.end(), g.begin(), g.end());
    constexpr size_t kNever = std::numeric_limits<size_t>::max();
    std::vector<size_t> next_use(seq.size(), kNever);
    {
        std::unordered_map<ExpertKey, size_t, ExpertKeyHash> later;
        for (size_t i = seq.size(); i-- > 0;) {
            auto it = later.find(seq[i]);
            if (it != later.end()) next_use[i] = it->second;
            later[seq[i]] = i;
        }
    }
    struct Cache {
        size_t capacity = 0;
        std::set<std::pair<size_t, ExpertKey>> by_next;  // (next use, key) of the residents
        std::unordered_map<ExpertKey, size_t, ExpertKeyHash> next_of;
    };
    std::map<int32_t, Cache> caches;
    for (const auto &[layer, cap] : capacities(groups, options)) caches[layer].capacity = cap;
    ReplayResult r;
    for (size_t i = 0; i < seq.size(); ++i) {
        Cache &c = caches.at(cache_of(options, seq[i]));
        auto it = c.next_of.find(seq[i]);
        if (it != c.next_of.end()) {
            ++r.hits;
            c.by_next.erase({it->second, seq[i]});
            it->second = next_use[i];
            c.by_next.insert({next_use[i], seq[i]});
            continue;
        }
        ++r.misses;
        if (c.capacity == 0 || next_use[i] == kNever) continue;
        if (c.next_of.size() >= c.capacity) {
            const auto furthest = std::prev(c.by_next.end());
            if (furthest->first <= next_use[i]) continue;  // the incoming one is needed last: bypass
            c.next_of.erase(furthest->second);
            c.by_next.erase(furthest);
        }
        c.next_of[seq[i]] = next_use[i];
        c.by_next.insert({next_use[i], seq[i]});
    }
    return r;
}

}  // namespace mst
