// Which cached expert to evict. The cache owns the bytes and the lock; a policy only
// orders keys. Policies: "lru", "lfu" (with aging), "arc" (adaptive replacement) and
// "lrfu" (frequency-weighted LRU: scores that decay with a half-life), and "lrfu-admit"
// (lrfu that caches a missed expert only when its score beats the victim's), and
// "lru-2touch" / "lrfu-2touch" (second-touch admission: a missed expert is cached only
// when it was missed before within the last capacity misses), and "learned" (a model fitted
// offline scores each expert's reuse from features tracked online; eviction_learned.cpp; the
// default). Not named here: lrfu-admit whose scores also gain the router's soft scores
// (make_lrfu_policy's soft_weight), which only the trace replay feeds (bench_routing soft; it
// gained 0-1 point, bench/RESULTS.md).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "experts/expert_key.h"

namespace mst {

class EvictionPolicy {
public:
    virtual ~EvictionPolicy() = default;
    virtual const char *name() const = 0;
    // A lookup found `key` resident.
    virtual void on_hit(const ExpertKey &key) = 0;
    // A lookup did not find `key` (it will be read, and probably inserted).
    virtual void on_miss(const ExpertKey &key) { (void)key; }
    // `key` became resident.
    virtual void on_insert(const ExpertKey &key) = 0;
    // The resident key to evict to make room for `incoming` (at least one is resident).
    virtual ExpertKey victim(const ExpertKey &incoming) = 0;
    // `key` was evicted.
    virtual void on_evict(const ExpertKey &key) = 0;
    // The cache is full and `victim` would go to make room for `incoming`: false keeps the
    // victim and leaves `incoming` uncached (admission control: an expert used once should
    // not push out one that keeps coming back). Called before any eviction for it.
    virtual bool admit(const ExpertKey &incoming, const ExpertKey &victim) {
        (void)incoming;
        (void)victim;
        return true;
    }
    // The cache's capacity in experts (budget / expert size), for policies that size
    // their bookkeeping by it; called before the first insert.
    virtual void set_capacity(size_t experts) { (void)experts; }
    // Each token looks up `k` experts of each layer (the model's top-k), for policies whose
    // clock is tokens rather than lookups; called before the first lookup.
    virtual void set_lookups_per_token(int32_t k) { (void)k; }
    // The router scored `key` for the token now being routed, before that layer's lookups:
    // `score` is k x its weight over the sum of the router's top-M weights (M > k: the
    // chosen experts and those just below them), so a token's scores add up to k, as its k
    // hard picks do. Policies that rank by history alone ignore it.
    virtual void on_router_score(const ExpertKey &key, float score) {
        (void)key;
        (void)score;
    }
    // Whether on_router_score tells this policy anything (the caller then routes the top M).
    virtual bool wants_router_scores() const { return false; }
};

// The policy names accepted by make_eviction_policy, plus "none" (cache nothing).
std::vector<std::string> cache_policy_names();

// Throws MST_ERR_INVALID_ARGUMENT for an unknown name, listing the known ones.
std::unique_ptr<EvictionPolicy> make_eviction_policy(const std::string &name);

}  // namespace mst
