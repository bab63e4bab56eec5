// The expert store's I/O threads. Reads are queued as jobs (a layer's experts, read in one
// batch) and answered through futures, so the caller computes while its reads are in
// flight. Reads the caller is about to wait for (demand) go before reads ahead of need
// (prefetch), and two threads serve the queue so that a demand read never waits behind
// a prefetch already running: reads ahead run on all threads but one, which stays free
// for demand (prefetch uses idle disk time only), and a read ahead that a demand comes to
// need before it started is promoted to a demand read.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "experts/expert_weights.h"

namespace mst {

class ExpertReadQueue {
public:
    // Reads the given experts of a layer from storage (and offers them to the cache).
    using ReadFn = std::function<std::vector<ExpertHandle>(int32_t layer, std::span<const int32_t> experts)>;
    enum class Priority { kDemand, kAhead };

    explicit ExpertReadQueue(ReadFn read, int n_threads = 2);
    ~ExpertReadQueue();  // waits for the reads running; drops those queued
    ExpertReadQueue(const ExpertReadQueue &) = delete;
    ExpertReadQueue &operator=(const ExpertReadQueue &) = delete;

    // One future per expert, in order; a failed read's futures hold its error.
    std::vector<std::shared_future<ExpertHandle>> submit(int32_t layer, std::vector<int32_t> experts,
                                                         Priority priority);
    // A demand now waits for `expert` of `layer`: a queued read ahead holding it moves to the
    // demand queue (its whole job, behind the demand reads queued before). No-op otherwise.
    void promote(int32_t layer, int32_t expert);

private:
    struct Job {
        int32_t layer = 0;
        std::vector<int32_t> experts;
        std::vector<std::promise<ExpertHandle>> promises;
    };
    void worker_loop();
    bool may_start_ahead() const;  // with mutex_ held

    const int n_threads_;
    ReadFn read_;
    std::mutex mutex_;
    std::condition_variable work_ready_;
    std::deque<Job> demand_, ahead_;
    int running_ahead_ = 0;
    bool stopping_ = false;
    std::vector<std::thread> workers_;  // last: they start after everything they use exists
};

}  // namespace mst
