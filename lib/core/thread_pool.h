// A fixed pool of worker threads for blocking work (storage reads), kept apart from
// the OpenMP threads that run kernels so that I/O waits never steal compute threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mst {

class ThreadPool {
public:
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool &) = delete;
    ThreadPool &operator=(const ThreadPool &) = delete;

    int size() const { return int(workers_.size()); }

    // Run task(i) for i in [0, n) on the pool and wait for all of them. Tasks must not
    // throw; callers record failures themselves.
    void run_all(size_t n, const std::function<void(size_t)> &task);

private:
    void worker_loop();

    std::mutex mutex_;
    std::condition_variable work_ready_;
    std::deque<std::function<void()>> queue_;
    std::vector<std::thread> workers_;
    bool stopping_ = false;
};

}  // namespace mst
