#include "experts/expert_read_queue.h"

#include <algorithm>

namespace mst {

ExpertReadQueue::ExpertReadQueue(ReadFn read, int n_threads) : n_threads_(std::max(n_threads, 1)), read_(std::move(read)) {
    for (int i = 0; i < n_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ExpertReadQueue::~ExpertReadQueue() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    work_ready_.notify_all();
    for (std::thread &t : workers_) t.join();
}

std::vector<std::shared_future<ExpertHandle>> ExpertReadQueue::submit(int32_t layer, std::vector<int32_t> experts,
                                                                      Priority priority) {
    Job job{layer, std::move(experts), {}};
    job.promises.resize(job.experts.size());
    std::vector<std::shared_future<ExpertHandle>> futures;
    futures.reserve(job.promises.size());
    for (auto &p : job.promises) futures.push_back(p.get_future().share());
    if (job.experts.empty()) return futures;
    {
        std::lock_guard lock(mutex_);
        (priority == Priority::kDemand ? demand_ : ahead_).push_back(std::move(job));
    }
    work_ready_.notify_one();
    return futures;
}

void ExpertReadQueue::promote(int32_t layer, int32_t expert) {
    std::lock_guard lock(mutex_);
    const auto it = std::ranges::find_if(ahead_, [&](const Job &j) {
        return j.layer == layer && std::ranges::find(j.experts, expert) != j.experts.end();
    });
    if (it == ahead_.end()) return;
    demand_.push_back(std::move(*it));
    ahead_.erase(it);
    work_ready_.notify_one();
}

bool ExpertReadQueue::may_start_ahead() const {
    // One thread is kept for demand reads, so a demand read never waits for a read ahead
    // to finish (with one thread there is none to keep: reads ahead run between demands).
    return !ahead_.empty() && (n_threads_ == 1 || running_ahead_ < n_threads_ - 1);
}

void ExpertReadQueue::worker_loop() {
    for (;;) {
        Job job;
        bool ahead = false;
        {
            std::unique_lock lock(mutex_);
            work_ready_.wait(lock, [this] { return stopping_ || !demand_.empty() || may_start_ahead(); });
            // On the way out, queued reads are dropped: their futures report a broken
            // promise, and nobody waits on them once the store is going away.
            if (stopping_) return;
            ahead = demand_.empty();
            std::deque<Job> &queue = ahead ? ahead_ : demand_;
            job = std::move(queue.front());
            queue.pop_front();
            if (ahead) ++running_ahead_;
        }
        try {
            std::vector<ExpertHandle> handles = read_(job.layer, job.experts);
            for (size_t i = 0; i < handles.size(); ++i) job.promises[i].set_value(std::move(handles[i]));
        } catch (...) {
            for (auto &p : job.promises) p.set_exception(std::current_exception());
        }
        if (ahead) {
            {
                std::lock_guard lock(mutex_);
                --running_ahead_;
            }
            work_ready_.notify_all();  // a read ahead that waited for this slot may start
        }
    }
}

}  // namespace mst
