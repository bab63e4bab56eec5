#include "experts/expert_cache.h"

#include <algorithm>

#include "core/error.h"

namespace mst {

ExpertCache::ExpertCache(uint64_t budget_bytes, const std::string &policy, int n_layers)
    : budget_(policy == "none" ? 0 : budget_bytes), policy_name_(policy),
      policy_(policy == "none" ? nullptr : make_eviction_policy(policy)), per_layer_(size_t(std::max(n_layers, 0))) {}

uint64_t ExpertCache::budget() const {
    std::lock_guard lock(mutex_);
    return budget_;
}

void ExpertCache::set_budget(uint64_t budget_bytes) {
    std::lock_guard lock(mutex_);
    if (!entries_.empty()) fail(MST_ERR_INTERNAL, "the expert cache budget was changed after the cache was used");
    budget_ = policy_ ? budget_bytes : 0;
    capacity_set_ = false;
}

void ExpertCache::set_lookups_per_token(int32_t k) {
    std::lock_guard lock(mutex_);
    if (total_.hits + total_.misses > 0) fail(MST_ERR_INTERNAL, "the expert cache was told the top-k after it was used");
    if (policy_) policy_->set_lookups_per_token(k);
}

void ExpertCache::set_evict_hook(std::function<void(const ExpertKey &, const ExpertWeights &)> hook) {
    std::lock_guard lock(mutex_);
    evict_hook_ = std::move(hook);
}

ExpertHandle ExpertCache::find(const ExpertKey &key) {
    std::lock_guard lock(mutex_);
    ExpertCacheStats &layer = per_layer_.at(size_t(key.layer));
    auto it = entries_.find(key);
    if (it == entries_.end()) {
        ++total_.misses;
        ++layer.misses;
        if (policy_) policy_->on_miss(key);
        return nullptr;
    }
    ++total_.hits;
    ++layer.hits;
    policy_->on_hit(key);
    return it->second;
}

ExpertHandle ExpertCache::peek(const ExpertKey &key) const {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : it->second;
}

void ExpertCache::insert(const ExpertKey &key, ExpertHandle weights) {
    const uint64_t bytes = weights->nbytes;
    std::lock_guard lock(mutex_);
    total_.bytes_read += bytes;
    per_layer_.at(size_t(key.layer)).bytes_read += bytes;
    if (!policy_ || bytes > budget_ || entries_.count(key)) return;
    if (!capacity_set_) {
        policy_->set_capacity(size_t(budget_ / std::max<uint64_t>(bytes, 1)));
        capacity_set_ = true;
    }
    for (bool first = true; !entries_.empty() && total_.bytes_held + bytes > budget_; first = false) {
        const ExpertKey victim = policy_->victim(key);
        if (first && !policy_->admit(key, victim)) return;  // the policy keeps what it has
        auto it = entries_.find(victim);
        const uint64_t victim_bytes = it->second->nbytes;
        if (evict_hook_) evict_hook_(victim, *it->second);
        entries_.erase(it);
        policy_->on_evict(victim);
        total_.bytes_held -= victim_bytes;
        ++total_.evictions;
        ++per_layer_.at(size_t(victim.layer)).evictions;
    }
    entries_.emplace(key, std::move(weights));
    policy_->on_insert(key);
    total_.bytes_held += bytes;
}

bool ExpertCache::contains(const ExpertKey &key) const {
    std::lock_guard lock(mutex_);
    return entries_.count(key) > 0;
}

ExpertCacheStats ExpertCache::stats() const {
    std::lock_guard lock(mutex_);
    ExpertCacheStats s = total_;
    s.entries = entries_.size();
    return s;
}

ExpertCacheStats ExpertCache::layer_stats(int layer) const {
    std::lock_guard lock(mutex_);
    return per_layer_.at(size_t(layer));
}

}  // namespace mst
