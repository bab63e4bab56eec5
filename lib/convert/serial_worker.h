// One background thread that runs jobs in the order they are posted, with a bounded
// queue: `moestream synth` generates the next batch of weights on every core while this
// thread writes (and hashes) the previous one, and the bound keeps memory to a few
// batches however fast generation runs ahead of the disk.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace mst {

class SerialWorker {
public:
    // At most `max_waiting` jobs wait at once (post blocks beyond that).
    explicit SerialWorker(size_t max_waiting);
    // Drops jobs that have not started, waits for the running one, joins.
    ~SerialWorker();
    SerialWorker(const SerialWorker &) = delete;
    SerialWorker &operator=(const SerialWorker &) = delete;

    // Queues `job`. After a job has thrown, later jobs are dropped and post and drain
    // rethrow its exception.
    void post(std::function<void()> job);
    // Waits until every posted job has run; rethrows the first job's exception.
    void drain();

private:
    void run();
    void rethrow_locked();

    const size_t max_waiting_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<std::function<void()>> jobs_;
    bool busy_ = false, stopping_ = false;
    std::exception_ptr error_;
    std::thread thread_;
};

}  // namespace mst
