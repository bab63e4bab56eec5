#include "experts/cache_replay.h"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <unordered_map>

#include "experts/eviction_policy.h"

namespace mst {

namespace {

// What the replay knows of an expert, to say why a miss happened (ReplayResult).
struct Life {
    bool seen = false;
    bool resident = false;
    bool bypassed = false;  // not cached at its last access
    uint64_t hits_since_insert = 0;
};

void count_miss(const Life &l, ReplayResult &r) {
    ++r.misses;
    if (!l.seen) ++r.first_use;
    else if (l.bypassed) ++r.not_kept;
    else ++r.evicted;
}

// A cache of `capacity` experts run by an EvictionPolicy, doing what ExpertCache does
// with uniform expert sizes.
class PolicyCache {
public:
    PolicyCache(std::unique_ptr<EvictionPolicy> policy, size_t capacity, int32_t lookups_per_token)
        : policy_(capacity == 0 ? nullptr : std::move(policy)), capacity_(capacity) {
        if (!policy_) return;
        policy_->set_capacity(capacity);
        policy_->set_lookups_per_token(lookups_per_token);
    }
    void score(const ExpertKey &key, float score) {
        if (policy_) policy_->on_router_score(key, score);
    }
    void hint(const ExpertKey &key) {
        if (lives_[key].resident) policy_->on_hit(key);
    }
    bool find(const ExpertKey &key, ReplayResult &r) {
        Life &l = lives_[key];
        if (!l.resident) {
            count_miss(l, r);
            l.seen = true;
            if (policy_) policy_->on_miss(key);
            return false;
        }
        ++r.hits;
        ++l.hits_since_insert;
        policy_->on_hit(key);
        return true;
    }
    void insert(const ExpertKey &key, ReplayResult &r) {
        Life &l = lives_[key];
        l.bypassed = true;
        if (!policy_ || l.resident) return;
        for (bool first = true; resident_ >= capacity_; first = false) {
            const ExpertKey victim = policy_->victim(key);
            if (first && !policy_->admit(key, victim)) return;
            Life &v = lives_[victim];
            v.resident = false;
            if (v.hits_since_insert == 0) ++r.evicted_unused;
            --resident_;
            policy_->on_evict(victim);
        }
        l = Life{true, true, false, 0};
        ++resident_;
        ++r.inserted;
        policy_->on_insert(key);
    }

private:
    std::unique_ptr<EvictionPolicy> policy_;
    size_t capacity_;
    size_t resident_ = 0;
    std::unordered_map<ExpertKey, Life, ExpertKeyHash> lives_;
};

// Per-layer capacities: one shared cache (key -1) or `capacity` split over the layers.
std::map<int32_t, size_t> capacities(const std::vector<std::vector<ExpertKey>> &groups, const ReplayOptions &o) {
    std::set<int32_t> layers;
    for (const auto &g : groups)
        for (const ExpertKey &k : g) layers.insert(k.layer);
    if (!o.layer_capacity.empty()) return o.layer_capacity;
    std::map<int32_t, size_t> out;
    if (!o.per_layer || layers.empty()) {
        out[-1] = o.capacity;
        return out;
    }
    size_t i = 0;
    for (int32_t l : layers) out[l] = o.capacity / layers.size() + (i++ < o.capacity % layers.size() ? 1 : 0);
    return out;
}

int32_t cache_of(const ReplayOptions &o, const ExpertKey &k) {
    return o.per_layer || !o.layer_capacity.empty() ? k.layer : -1;
}

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

RouterScores decode_router_scores(const RouteTraceData &t) {
    RouterScores scores(size_t(t.n_tokens) * t.n_slots());
    if (t.ranked == 0) return scores;
    for (int64_t tok = 0; tok < t.n_tokens; ++tok)
        for (size_t s = 0; s < t.n_slots(); ++s) {
            const size_t at = t.ranked_at(tok, s);
            if (t.ranked_ids[at] < 0) continue;
            double sum = 0.0;
            for (int32_t j = 0; j < t.ranked; ++j) sum += std::max(0.0f, t.ranked_weights[at + size_t(j)]);
            if (!(sum > 0.0)) continue;
            auto &g = scores[size_t(tok) * t.n_slots() + s];
            for (int32_t j = 0; j < t.ranked; ++j)
                g.emplace_back(ExpertKey{t.layers[s], t.ranked_ids[at + size_t(j)]},
                               float(double(t.k) * std::max(0.0f, t.ranked_weights[at + size_t(j)]) / sum));
        }
    return scores;
}

ReplayResult replay_policy(const std::vector<std::vector<ExpertKey>> &groups, const std::string &policy,
                           const ReplayOptions &options) {
    if (policy == "none") return replay_policy(groups, PolicyFactory([] { return nullptr; }), options);
    (void)make_eviction_policy(policy);  // an unknown name fails here, before the replay
    return replay_policy(groups, PolicyFactory([&] { return make_eviction_policy(policy); }), options);
}

ReplayResult replay_policy(const std::vector<std::vector<ExpertKey>> &groups, const PolicyFactory &make,
                           const ReplayOptions &options) {
    // A group is one token's lookups of one layer: the largest is the top-k (smaller ones
    // only where a slot was dropped).
    size_t top_k = 1;
    for (const auto &g : groups) top_k = std::max(top_k, g.size());
    std::map<int32_t, PolicyCache> caches;
    for (const auto &[layer, cap] : capacities(groups, options)) caches.emplace(layer, PolicyCache(make(), cap, int32_t(top_k)));
    ReplayResult r;
    std::vector<ExpertKey> missed;
    for (const auto &g : groups) {
        missed.clear();
        if (options.scores)
            for (const auto &[k, score] : (*options.scores)[size_t(&g - groups.data())])
                caches.at(cache_of(options, k)).score(k, score);
        for (const ExpertKey &k : g) {
            if (!caches.at(cache_of(options, k)).find(k, r)) missed.push_back(k);
        }
        // The guesses for the next layer are made when this layer routes, before its reads
        // land and are inserted: the policy hears of them before it picks victims.
        if (options.hints)
            for (const ExpertKey &k : (*options.hints)[size_t(&g - groups.data())]) caches.at(cache_of(options, k)).hint(k);
        for (const ExpertKey &k : missed) caches.at(cache_of(options, k)).insert(k, r);
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
        std::unordered_map<ExpertKey, Life, ExpertKeyHash> lives;  // resident / hits unused here
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
        Life &l = c.lives[seq[i]];
        count_miss(l, r);
        l.seen = true;
        l.bypassed = true;
        if (c.capacity == 0 || next_use[i] == kNever) continue;
        if (c.next_of.size() >= c.capacity) {
            const auto furthest = std::prev(c.by_next.end());
            if (furthest->first <= next_use[i]) continue;  // the incoming one is needed last: bypass
            c.lives[furthest->second].bypassed = false;  // evicted, not bypassed
            c.next_of.erase(furthest->second);
            c.by_next.erase(furthest);
        }
        l.bypassed = false;
        ++r.inserted;
        c.next_of[seq[i]] = next_use[i];
        c.by_next.insert({next_use[i], seq[i]});
    }
    return r;
}

}  // namespace mst

namespace mst {

std::vector<std::vector<ExpertKey>> next_token_hints(const std::vector<std::vector<ExpertKey>> &groups, size_t n_slots) {
    std::vector<std::vector<ExpertKey>> hints(groups.size());
    for (size_t g = 0; g + n_slots < groups.size(); ++g) hints[g] = groups[g + n_slots];
    return hints;
}

std::map<int32_t, size_t> reuse_sized_budgets(const std::vector<std::vector<ExpertKey>> &groups, size_t capacity) {
    // Per layer: an LRU stack of its experts, and hits_at[c] = accesses whose stack distance is c
    // (an LRU cache of at least c + 1 experts of that layer hits them).
    std::map<int32_t, std::vector<int32_t>> stacks;
    std::map<int32_t, std::vector<uint64_t>> hits_at;
    for (const auto &g : groups)
        for (const ExpertKey &k : g) {
            std::vector<int32_t> &stack = stacks[k.layer];
            std::vector<uint64_t> &h = hits_at[k.layer];
            const auto it = std::ranges::find(stack, k.expert);
            if (it != stack.end()) {
                const size_t d = size_t(it - stack.begin());
                if (h.size() <= d) h.resize(d + 1);
                ++h[d];
                stack.erase(it);
            }
            stack.insert(stack.begin(), k.expert);
        }
    // best[j][c]: the most hits the first j layers reach with c experts; choice[j][c] the
    // last layer's share.
    std::vector<int32_t> layers;
    std::vector<std::vector<uint64_t>> curve;  // curve[j][c]: layer j's hits with c experts
    for (auto &[layer, h] : hits_at) {
        layers.push_back(layer);
        std::vector<uint64_t> cum(capacity + 1, 0);
        for (size_t c = 1; c <= capacity; ++c) cum[c] = cum[c - 1] + (c - 1 < h.size() ? h[c - 1] : 0);
        curve.push_back(std::move(cum));
    }
    std::map<int32_t, size_t> out;
    if (layers.empty()) return out;
    const size_t n = layers.size();
    std::vector<std::vector<uint64_t>> best(n + 1, std::vector<uint64_t>(capacity + 1, 0));
    std::vector<std::vector<size_t>> choice(n + 1, std::vector<size_t>(capacity + 1, 0));
    for (size_t j = 1; j <= n; ++j)
        for (size_t c = 0; c <= capacity; ++c)
            for (size_t x = j == 1 ? c : 0; x <= c; ++x) {  // the first layer takes what is left
                const uint64_t v = best[j - 1][c - x] + curve[j - 1][x];
                if (x == (j == 1 ? c : 0) || v > best[j][c]) {
                    best[j][c] = v;
                    choice[j][c] = x;
                }
            }
    for (size_t j = n, c = capacity; j > 0; --j) {
        out[layers[j - 1]] = choice[j][c];
        c -= choice[j][c];
    }
    return out;
}

}  // namespace mst
