#include "experts/expert_read_queue.h"

namespace mst {

ExpertReadQueue::ExpertReadQueue(ReadFn read, int n_threads) : read_(std::move(read)) {
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

void ExpertReadQueue::worker_loop() {
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mutex_);
            work_ready_.wait(lock, [this] { return stopping_ || !demand_.empty() || !ahead_.empty(); });
            // On the way out, queued reads are dropped: their futures report a broken
            // promise, and nobody waits on them once the store is going away.
            if (stopping_) return;
            std::deque<Job> &queue = !demand_.empty() ? demand_ : ahead_;
            job = std::move(queue.front());
            queue.pop_front();
        }
        try {
            std::vector<ExpertHandle> handles = read_(job.layer, job.experts);
            for (size_t i = 0; i < handles.size(); ++i) job.promises[i].set_value(std::move(handles[i]));
        } catch (...) {
            for (auto &p : job.promises) p.set_exception(std::current_exception());
        }
    }
}

}  // namespace mst
