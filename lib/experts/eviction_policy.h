// Which cached expert to evict. The cache owns the bytes and the lock; a policy only
// orders keys. Policies: "lru", "lfu" (with aging), "arc" (adaptive replacement) and
// "lrfu" (frequency-weighted LRU: scores that decay with a half-life), and "lrfu-admit"
// (lrfu that caches a missed expert only when its score beats the victim's), and
// "lru-2touch" / "lrfu-2touch" (second-touch admission: a missed expert is cached only
// when it was missed before within the last capacity misses).
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
};

// The policy names accepted by make_eviction_policy, plus "none" (cache nothing).
std::vector<std::string> cache_policy_names();

// Throws MST_ERR_INVALID_ARGUMENT for an unknown name, listing the known ones.
std::unique_ptr<EvictionPolicy> make_eviction_policy(const std::string &name);

}  // namespace mst
