#include "experts/expert_prefetcher.h"

#include <chrono>

namespace mst {

ExpertPrefetcher::ExpertPrefetcher(ReadFn read, SizeFn size_of)
    : read_(std::move(read)), size_of_(std::move(size_of)), worker_([this] { worker_loop(); }) {}

ExpertPrefetcher::~ExpertPrefetcher() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    work_ready_.notify_all();
    worker_.join();
}

void ExpertPrefetcher::predict(int32_t layer, std::span<const int32_t> experts,
                               const std::function<bool(const ExpertKey &)> &resident) {
    Job job{layer, {}, {}};
    {
        std::lock_guard lock(mutex_);
        auto &predicted = predictions_[layer];
        for (int32_t e : experts) {
            if (!predicted.insert(e).second) continue;
            ++stats_.predicted;
            const ExpertKey key{layer, e};
            if (staged_.count(key) || resident(key)) continue;
            job.experts.push_back(e);
            job.promises.emplace_back();
            staged_[key] = job.promises.back().get_future().share();
        }
        if (job.experts.empty()) return;
        queue_.push_back(std::move(job));
    }
    work_ready_.notify_one();
}

void ExpertPrefetcher::worker_loop() {
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mutex_);
            work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;
            job = std::move(queue_.front());
            queue_.pop_front();
        }
        try {
            std::vector<ExpertHandle> handles = read_(job.layer, job.experts);
            for (size_t i = 0; i < handles.size(); ++i) job.promises[i].set_value(std::move(handles[i]));
        } catch (...) {
            for (auto &p : job.promises) p.set_value(nullptr);  // the consumer reads it itself
        }
    }
}

ExpertHandle ExpertPrefetcher::take(const ExpertKey &key, double &wait_seconds) {
    std::shared_future<ExpertHandle> future;
    {
        std::lock_guard lock(mutex_);
        auto it = staged_.find(key);
        if (it == staged_.end()) return nullptr;
        future = it->second;
        staged_.erase(it);
    }
    const auto start = std::chrono::steady_clock::now();
    ExpertHandle handle = future.get();
    wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return handle;
}

void ExpertPrefetcher::settle(int32_t layer, std::span<const int32_t> chosen) {
    std::lock_guard lock(mutex_);
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
