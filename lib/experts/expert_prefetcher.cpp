#include "experts/expert_prefetcher.h"

namespace mst {

ExpertPrefetcher::ExpertPrefetcher(SubmitFn submit, SizeFn size_of, PrefetchRule rule)
    : submit_(std::move(submit)), size_of_(std::move(size_of)), rule_(rule) {}

void ExpertPrefetcher::predict(int32_t layer, std::span<const int32_t> experts, std::span<const float> weights,
                               const std::function<bool(const ExpertKey &)> &resident) {
    std::lock_guard lock(mutex_);
    const std::vector<float> equal(weights.empty() ? experts.size() : 0, 0.0f);
    std::vector<int32_t> kept;
    auto last = last_chosen_.find(layer);
    select_prefetch(rule_, experts, weights.empty() ? std::span<const float>(equal) : weights,
                    last == last_chosen_.end() ? std::span<const int32_t>() : std::span<const int32_t>(last->second),
                    kept);
    auto &predicted = predictions_[layer];
    std::vector<int32_t> to_read;
    for (int32_t e : kept) {
        if (!predicted.insert(e).second) continue;
        ++stats_.predicted;
        const ExpertKey key{layer, e};
        if (staged_.count(key) || resident(key)) continue;
        to_read.push_back(e);
    }
    if (to_read.empty()) return;
    const std::vector<std::shared_future<ExpertHandle>> futures = submit_(layer, to_read);
    for (size_t i = 0; i < to_read.size(); ++i) staged_[ExpertKey{layer, to_read[i]}] = futures[i];
}

std::optional<std::shared_future<ExpertHandle>> ExpertPrefetcher::take(const ExpertKey &key) {
    std::lock_guard lock(mutex_);
    auto it = staged_.find(key);
    if (it == staged_.end()) return std::nullopt;
    std::shared_future<ExpertHandle> future = std::move(it->second);
    staged_.erase(it);
    return future;
}

void ExpertPrefetcher::settle(int32_t layer, std::span<const int32_t> chosen) {
    std::lock_guard lock(mutex_);
    last_chosen_[layer].assign(chosen.begin(), chosen.end());
    auto it = predictions_.find(layer);
    if (it == predictions_.end()) return;
    const std::unordered_set<int32_t> actual(chosen.begin(), chosen.end());
    stats_.needed += actual.size();
    for (int32_t e : it->second) {
        if (actual.count(e)) {
            ++stats_.used;
            continue;
        }
        // Staged and not chosen: its read (finished or in flight) was for nothing. The
        // future is dropped without waiting, so a slow read never stalls the caller.
        const ExpertKey key{layer, e};
        if (staged_.erase(key)) stats_.wasted_bytes += size_of_(key);
    }
    predictions_.erase(it);
}

PrefetchStats ExpertPrefetcher::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

}  // namespace mst
