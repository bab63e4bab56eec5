#include "convert/serial_worker.h"

namespace mst {

SerialWorker::SerialWorker(size_t max_waiting) : max_waiting_(max_waiting ? max_waiting : 1) {
    thread_ = std::thread([this] { run(); });
}

SerialWorker::~SerialWorker() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        jobs_.clear();
    }
    changed_.notify_all();
    thread_.join();
}

void SerialWorker::rethrow_locked() {
    if (error_) std::rethrow_exception(error_);
}

void SerialWorker::post(std::function<void()> job) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return jobs_.size() < max_waiting_ || error_; });
    rethrow_locked();
    jobs_.push_back(std::move(job));
    changed_.notify_all();
}

void SerialWorker::drain() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return (jobs_.empty() && !busy_) || error_; });
    rethrow_locked();
}

void SerialWorker::run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        changed_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
        if (stopping_) return;
        std::function<void()> job = std::move(jobs_.front());
        jobs_.pop_front();
        busy_ = true;
        changed_.notify_all();
        lock.unlock();
        std::exception_ptr failed;
        try {
            job();
        } catch (...) {
            failed = std::current_exception();
        }
        lock.lock();
        busy_ = false;
        if (failed && !error_) error_ = failed;
        if (error_) jobs_.clear();
        changed_.notify_all();
    }
}

}  // namespace mst
