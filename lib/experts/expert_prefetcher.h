// Reads predicted experts ahead, on a thread of its own, while the current layer
// computes. The model predicts (by applying the next layer's router to the current
// hidden state); the store takes staged experts when the real routing asks for them and
// settles each prediction against the real choice, which gives precision, recall and
// the bytes read for nothing.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <span>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "experts/expert_key.h"
#include "experts/expert_weights.h"

namespace mst {

struct PrefetchStats {
    uint64_t predicted = 0;     // experts predicted
    uint64_t used = 0;          // predicted and then chosen
    uint64_t needed = 0;        // chosen in steps that had a prediction
    uint64_t wasted_bytes = 0;  // read ahead and not chosen
};

class ExpertPrefetcher {
public:
    // Reads the given experts of a layer from storage (and offers them to the cache).
    using ReadFn = std::function<std::vector<ExpertHandle>(int32_t layer, std::span<const int32_t> experts)>;

    using SizeFn = std::function<uint64_t(const ExpertKey &key)>;

    ExpertPrefetcher(ReadFn read, SizeFn size_of);
    ~ExpertPrefetcher();
    ExpertPrefetcher(const ExpertPrefetcher &) = delete;
    ExpertPrefetcher &operator=(const ExpertPrefetcher &) = delete;

    // Predict that `experts` of `layer` come next; those not `resident` are read ahead.
    void predict(int32_t layer, std::span<const int32_t> experts, const std::function<bool(const ExpertKey &)> &resident);
    // A staged expert, waiting for its read if still in flight; nullptr if none is staged
    // or its read failed (the caller then reads it itself and sees the error).
    ExpertHandle take(const ExpertKey &key, double &wait_seconds);
    // The real choice for `layer`: score the prediction and drop what was not used.
    void settle(int32_t layer, std::span<const int32_t> chosen);
    PrefetchStats stats() const;

private:
    struct Job {
        int32_t layer;
        std::vector<int32_t> experts;
        std::vector<std::promise<ExpertHandle>> promises;
    };
    void worker_loop();

    ReadFn read_;
    SizeFn size_of_;
    mutable std::mutex mutex_;
    std::condition_variable work_ready_;
    std::deque<Job> queue_;
    bool stopping_ = false;
    std::unordered_map<ExpertKey, std::shared_future<ExpertHandle>, ExpertKeyHash> staged_;
    std::unordered_map<int32_t, std::unordered_set<int32_t>> predictions_;  // layer -> predicted experts
    PrefetchStats stats_;
    std::thread worker_;  // last: starts after everything it uses exists
};

}  // namespace mst
