// The budgeted expert cache: experts stay in memory until the bytes held would pass the
// budget, and the eviction policy picks what goes. Shared by every session of a model,
// so it is thread-safe. Policy "none" (or a budget of 0) keeps nothing: only the OS
// page cache helps then.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "experts/eviction_policy.h"
#include "experts/expert_key.h"
#include "experts/expert_weights.h"

namespace mst {

struct ExpertCacheStats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t evictions = 0;
    uint64_t bytes_read = 0;   // read from storage for misses
    uint64_t bytes_held = 0;   // now (whole cache only)
    uint64_t entries = 0;      // now (whole cache only)
};

class ExpertCache {
public:
    ExpertCache(uint64_t budget_bytes, const std::string &policy, int n_layers);

    uint64_t budget() const;
    // Change the budget before the cache is first used (the loader sets the default budget
    // once the model's sizes are known); MST_ERR_INTERNAL once it holds experts.
    void set_budget(uint64_t budget_bytes);
    const std::string &policy_name() const { return policy_name_; }
    // Tell the policy the model's top-k (EvictionPolicy::set_lookups_per_token) before the
    // cache is first used (the loader knows k once the model's config is read);
    // MST_ERR_INTERNAL after a lookup.
    void set_lookups_per_token(int32_t k);

    // The expert if cached (a hit for the policy), else nullptr (a miss).
    ExpertHandle find(const ExpertKey &key);
    // Whether `key` is cached, without counting a hit or miss.
    bool contains(const ExpertKey &key) const;
    // The expert if cached, without counting a hit or miss or telling the policy (a look
    // that is not a use: copying a guessed expert on to a device ahead of need).
    ExpertHandle peek(const ExpertKey &key) const;
    // Keep `weights` (just read for a miss), evicting until it fits. An expert larger
    // than the whole budget is not kept.
    void insert(const ExpertKey &key, ExpertHandle weights);
    // Called for every expert dropped, e.g. to tell the OS its pages are cold.
    void set_evict_hook(std::function<void(const ExpertKey &, const ExpertWeights &)> hook);

    ExpertCacheStats stats() const;
    ExpertCacheStats layer_stats(int layer) const;

private:
    uint64_t budget_;  // guarded by mutex_
    const std::string policy_name_;
    std::unique_ptr<EvictionPolicy> policy_;  // null for "none"
    mutable std::mutex mutex_;
    std::unordered_map<ExpertKey, ExpertHandle, ExpertKeyHash> entries_;
    std::function<void(const ExpertKey &, const ExpertWeights &)> evict_hook_;
    bool capacity_set_ = false;
    ExpertCacheStats total_;
    std::vector<ExpertCacheStats> per_layer_;
};

}  // namespace mst
