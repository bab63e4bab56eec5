// The budgeted expert cache: least-recently-used experts are evicted once the bytes held
// would pass the budget. Shared by every session of a model, so it is thread-safe.
// A budget of 0 keeps nothing (only the OS page cache helps then).
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "experts/expert_weights.h"

namespace mst {

struct ExpertKey {
    int32_t layer = 0;
    int32_t expert = 0;
    bool operator==(const ExpertKey &) const = default;
};

struct ExpertKeyHash {
    size_t operator()(const ExpertKey &k) const { return (size_t(uint32_t(k.layer)) << 32) ^ size_t(uint32_t(k.expert)); }
};

struct ExpertCacheStats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t evictions = 0;
    uint64_t bytes_held = 0;
    uint64_t entries = 0;
};

class ExpertCache {
public:
    explicit ExpertCache(uint64_t budget_bytes) : budget_(budget_bytes) {}

    uint64_t budget() const { return budget_; }
    // The expert if cached (and marks it most recently used), else nullptr.
    ExpertHandle find(const ExpertKey &key);
    // Keep `weights`, evicting the least recently used until it fits. An expert larger
    // than the whole budget is not kept.
    void insert(const ExpertKey &key, ExpertHandle weights);
    ExpertCacheStats stats() const;

private:
    struct Entry {
        ExpertKey key;
        ExpertHandle weights;
    };
    void evict_until_fits(uint64_t incoming);

    const uint64_t budget_;
    mutable std::mutex mutex_;
    std::list<Entry> lru_;  // front = most recently used
    std::unordered_map<ExpertKey, std::list<Entry>::iterator, ExpertKeyHash> index_;
    ExpertCacheStats stats_;
};

}  // namespace mst
