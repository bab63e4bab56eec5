#include "core/thread_pool.h"

#include <latch>

namespace mst {

ThreadPool::ThreadPool(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    workers_.reserve(size_t(n_threads));
    for (int i = 0; i < n_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    work_ready_.notify_all();
    for (auto &worker : workers_) worker.join();
}

void ThreadPool::run_all(size_t n, const std::function<void(size_t)> &task) {
    if (n == 0) return;
    std::latch done(static_cast<std::ptrdiff_t>(n));
    {
        std::lock_guard lock(mutex_);
        for (size_t i = 0; i < n; ++i)
            queue_.emplace_back([&task, &done, i] {
                task(i);
                done.count_down();
            });
    }
    work_ready_.notify_all();
    done.wait();
}

void ThreadPool::worker_loop() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(mutex_);
            work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping and drained
            job = std::move(queue_.front());
            queue_.pop_front();
        }
        job();
    }
}

}  // namespace mst
