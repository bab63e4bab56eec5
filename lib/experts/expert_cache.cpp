#include "experts/expert_cache.h"

namespace mst {

ExpertHandle ExpertCache::find(const ExpertKey &key) {
    std::lock_guard lock(mutex_);
    auto it = index_.find(key);
    if (it == index_.end()) {
        ++stats_.misses;
        return nullptr;
    }
    ++stats_.hits;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->weights;
}

void ExpertCache::insert(const ExpertKey &key, ExpertHandle weights) {
    const uint64_t bytes = weights->nbytes;
    std::lock_guard lock(mutex_);
    if (bytes > budget_ || index_.count(key)) return;
    evict_until_fits(bytes);
    lru_.push_front(Entry{key, std::move(weights)});
    index_[key] = lru_.begin();
    stats_.bytes_held += bytes;
    stats_.entries = index_.size();
}

void ExpertCache::evict_until_fits(uint64_t incoming) {
    while (!lru_.empty() && stats_.bytes_held + incoming > budget_) {
        Entry &victim = lru_.back();
        stats_.bytes_held -= victim.weights->nbytes;
        index_.erase(victim.key);
        lru_.pop_back();
        ++stats_.evictions;
    }
    stats_.entries = index_.size();
}

ExpertCacheStats ExpertCache::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

}  // namespace mst
