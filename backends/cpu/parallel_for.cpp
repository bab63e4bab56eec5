// The worker pool behind parallel_for (parallel_for.h). One process-wide pool, grown to the
// largest thread count asked for; one caller at a time (others run serially).
//
// Hand-off: the caller publishes a job and bumps `generation_`; workers spin on it, then
// sleep on it with a futex. Every worker acknowledges every generation (decrementing
// `pending_`), those without a share at once, so the caller never rewrites the job while
// a late worker still reads it. Sleeping is announced before the futex wait (a Dekker
// pair of sequentially consistent operations with the waker's), so a wake-up is skipped
// only when nobody sleeps, and never lost.
#include "backends/cpu/parallel_for.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/op_profile.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace mst {
namespace {

using parallel_for_detail::Split;
using Clock = std::chrono::steady_clock;

void cpu_relax() {
#if defined(__x86_64__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "futex needs a plain 32-bit word");

void futex_wait(std::atomic<uint32_t> &word, uint32_t expected) {
    syscall(SYS_futex, reinterpret_cast<uint32_t *>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void futex_wake(std::atomic<uint32_t> &word, int count) {
    syscall(SYS_futex, reinterpret_cast<uint32_t *>(&word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
}

int spin_micros_from_env() {
    const char *v = std::getenv("MST_CPU_SPIN_US");
    if (!v || !*v) return kDefaultSpinMicros;
    char *end = nullptr;
    const long us = std::strtol(v, &end, 10);
    return (*end == '\0' && us >= 0 && us <= 1000000) ? int(us) : kDefaultSpinMicros;
}

// Spins while `done()` is false for up to `spin`, then returns false (time to sleep).
template <typename Done>
bool spin_until(Done done, Clock::duration spin) {
    if (done()) return true;
    if (spin.count() == 0) return false;
    const Clock::time_point deadline = Clock::now() + spin;
    for (uint32_t i = 1;; ++i) {
        cpu_relax();
        if (done()) return true;
        if (i % 64 == 0 && Clock::now() >= deadline) return false;
    }
}

thread_local bool t_inside_body = false;

class Pool {
public:
    Pool() : spin_(std::chrono::microseconds(spin_micros_from_env())) {}

    ~Pool() {
        std::lock_guard<std::mutex> lock(job_mutex_);
        stopping_.store(true);
        generation_.fetch_add(1);
        futex_wake(generation_, INT32_MAX);
        for (std::thread &t : workers_) t.join();
    }

    Clock::duration spin() const { return spin_; }

    // False when another caller holds the pool (the caller then runs serially).
    bool run(int64_t n, int threads, int64_t grain, Split split, parallel_for_detail::RangeFn fn, void *body) {
        std::unique_lock<std::mutex> lock(job_mutex_, std::try_to_lock);
        if (!lock.owns_lock()) return false;
        while (int(workers_.size()) < threads - 1) {
            // The generation before this job's, read here: a new thread that read it
            // itself could see this job's and wait for the next one.
            const int index = int(workers_.size()) + 1;
            const uint32_t seen = generation_.load();
            workers_.emplace_back([this, index, seen] { worker_loop(index, seen); });
        }
        const bool profile = op_profile_enabled();
        const Clock::time_point start = profile ? Clock::now() : Clock::time_point{};
        const double start_cpu = profile ? op_profile_thread_cpu_seconds() : 0.0;
        if (profile) {
            // Each thread writes only its own slots; the caller reads them after every
            // worker's acknowledgement (pending_), so plain integers do.
            body_start_ns_.assign(size_t(threads), 0);
            body_end_ns_.assign(size_t(threads), 0);
        }
        if (split == Split::Stealing) {
            if (int(ranges_.size()) < threads) ranges_ = std::vector<std::atomic<uint64_t>>(size_t(threads));
            for (int i = 0; i < threads; ++i)
                ranges_[size_t(i)].store(pack_range(n * i / threads, n * (i + 1) / threads), std::memory_order_relaxed);
        }
        job_ = Job{fn, body, n, grain, split, threads, profile, start};
        next_.store(0, std::memory_order_relaxed);
        busy_ns_.store(0, std::memory_order_relaxed);
        busy_cpu_ns_.store(0, std::memory_order_relaxed);
        failed_.store(false, std::memory_order_relaxed);
        error_ = nullptr;
        pending_.store(uint32_t(workers_.size()), std::memory_order_relaxed);
        generation_.fetch_add(1);  // seq_cst: publishes the job, pairs with a worker's sleeping_ increment
        const bool woke_sleepers = sleeping_.load() > 0;
        if (woke_sleepers) futex_wake(generation_, INT32_MAX);

        run_share(0);
        if (!spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; }, spin_)) {
            caller_sleeping_.store(true);
            for (uint32_t p; (p = pending_.load()) != 0;) futex_wait(pending_, p);
            caller_sleeping_.store(false);
        }
        if (profile) record_profile(start, start_cpu, threads, woke_sleepers);
        if (error_) std::rethrow_exception(error_);
        return true;
    }

private:
    struct Job {
        parallel_for_detail::RangeFn fn = nullptr;
        void *body = nullptr;
        int64_t n = 0;
        int64_t grain = 0;
        Split split = Split::Static;
        int threads = 1;
        bool profile = false;
        Clock::time_point start;  // dispatch, when profiling
    };

    // The region's split for bench_decode --profile (RegionTotals in core/op_profile.h).
    void record_profile(Clock::time_point start, double start_cpu, int threads, bool woke_sleepers) {
        RegionSample r;
        r.woke_sleepers = woke_sleepers;
        r.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
        r.threads = threads;
        r.busy_seconds = double(busy_ns_.load()) * 1e-9;
        r.busy_cpu_seconds = double(busy_cpu_ns_.load()) * 1e-9;
        r.caller_cpu_seconds = op_profile_thread_cpu_seconds() - start_cpu;
        const int64_t last_end = *std::max_element(body_end_ns_.begin(), body_end_ns_.end());
        for (int i = 0; i < threads; ++i) {
            r.start_wait_seconds += double(body_start_ns_[size_t(i)]) * 1e-9;
            r.imbalance_seconds += double(last_end - body_end_ns_[size_t(i)]) * 1e-9;
        }
        r.finish_wait_seconds = std::max(0.0, r.wall_seconds - double(last_end) * 1e-9) * threads;
        op_profile_record_region(r);
    }

    void run_share(int index) {
        const Job &j = job_;
        if (index >= j.threads) return;
        const Clock::time_point start = j.profile ? Clock::now() : Clock::time_point{};
        const double start_cpu = j.profile ? op_profile_thread_cpu_seconds() : 0.0;
        t_inside_body = true;
        try {
            if (j.split == Split::Static) {
                const int64_t begin = j.n * index / j.threads, end = j.n * (index + 1) / j.threads;
                if (begin < end) j.fn(j.body, begin, end);
            } else if (j.split == Split::Stealing) {
                run_stealing(j, index);
            } else {
                for (;;) {
                    if (failed_.load(std::memory_order_relaxed)) break;
                    const int64_t begin = next_.fetch_add(j.grain, std::memory_order_relaxed);
                    if (begin >= j.n) break;
                    j.fn(j.body, begin, std::min(j.n, begin + j.grain));
                }
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex_);
            if (!error_) error_ = std::current_exception();
            failed_.store(true, std::memory_order_relaxed);
        }
        t_inside_body = false;
        if (j.profile) {
            const Clock::time_point end = Clock::now();
            body_start_ns_[size_t(index)] = std::chrono::duration_cast<std::chrono::nanoseconds>(start - j.start).count();
            body_end_ns_[size_t(index)] = std::chrono::duration_cast<std::chrono::nanoseconds>(end - j.start).count();
            busy_ns_.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count(),
                               std::memory_order_relaxed);
            busy_cpu_ns_.fetch_add(int64_t((op_profile_thread_cpu_seconds() - start_cpu) * 1e9),
                                   std::memory_order_relaxed);
        }
    }

    // Stealing split: each thread's remaining range [front, back) as one word, so that its
    // owner (from the front) and thieves (from the back) claim pieces with one CAS each.
    static uint64_t pack_range(int64_t front, int64_t back) { return uint64_t(front) << 32 | uint64_t(back); }
    static int64_t range_front(uint64_t r) { return int64_t(r >> 32); }
    static int64_t range_back(uint64_t r) { return int64_t(r & 0xffffffffu); }

    // Claims a piece of thread `owner`'s range: from the front, a quarter of what is left
    // (at least `grain`), for the owner; from the back, `grain`, for a thief. False when the
    // range is empty.
    bool claim(int owner, bool own, int64_t grain, int64_t &begin, int64_t &end) {
        std::atomic<uint64_t> &range = ranges_[size_t(owner)];
        uint64_t r = range.load(std::memory_order_relaxed);
        for (;;) {
            const int64_t front = range_front(r), back = range_back(r);
            if (front >= back) return false;
            const int64_t take = std::min(back - front, own ? std::max(grain, (back - front) / 4) : grain);
            begin = own ? front : back - take;
            end = own ? front + take : back;
            const uint64_t next = own ? pack_range(end, back) : pack_range(front, begin);
            if (range.compare_exchange_weak(r, next, std::memory_order_relaxed)) return true;
        }
    }

    void run_stealing(const Job &j, int index) {
        int64_t begin = 0, end = 0;
        while (!failed_.load(std::memory_order_relaxed) && claim(index, true, j.grain, begin, end))
            j.fn(j.body, begin, end);
        for (int k = 1; k < j.threads; ++k) {
            const int victim = (index + k) % j.threads;
            while (!failed_.load(std::memory_order_relaxed) && claim(victim, false, j.grain, begin, end))
                j.fn(j.body, begin, end);
        }
    }

    void worker_loop(int index, uint32_t seen) {
        for (;;) {
            if (!spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; }, spin_)) {
                sleeping_.fetch_add(1);  // seq_cst, before the futex re-checks generation_
                while (generation_.load() == seen) futex_wait(generation_, seen);
                sleeping_.fetch_sub(1);
            }
            seen = generation_.load(std::memory_order_acquire);
            if (stopping_.load()) return;
            run_share(index);
            if (pending_.fetch_sub(1) == 1 && caller_sleeping_.load()) futex_wake(pending_, 1);
        }
    }

    const Clock::duration spin_;
    std::mutex job_mutex_;  // held by the caller of the running job
    std::vector<std::thread> workers_;
    Job job_;
    std::atomic<uint32_t> generation_{0};
    std::atomic<uint32_t> pending_{0};  // workers yet to acknowledge the job
    std::atomic<int> sleeping_{0};      // workers in (or about to enter) the futex wait
    std::atomic<bool> caller_sleeping_{false};
    std::atomic<bool> stopping_{false};
    std::atomic<int64_t> next_{0};  // dynamic: the first index not yet handed out
    std::atomic<int64_t> busy_ns_{0};
    std::atomic<int64_t> busy_cpu_ns_{0};
    std::vector<std::atomic<uint64_t>> ranges_;  // stealing split: per thread, pack_range(front, back)
    std::vector<int64_t> body_start_ns_, body_end_ns_;  // per thread, from the dispatch (profiling)
    std::atomic<bool> failed_{false};
    std::mutex error_mutex_;
    std::exception_ptr error_;
};

Pool &pool() {
    static Pool p;
    return p;
}

void run_serially(int64_t n, int64_t grain, Split split, parallel_for_detail::RangeFn fn, void *body) {
    if (split != Split::Dynamic || grain >= n) return fn(body, 0, n);
    for (int64_t begin = 0; begin < n; begin += grain) fn(body, begin, std::min(n, begin + grain));
}

}  // namespace

namespace parallel_for_detail {

void run(int64_t n, int max_threads, int64_t grain, Split split, RangeFn fn, void *body) {
    if (n <= 0) return;
    // The stealing split packs a range's ends into 32 bits each.
    if (split == Split::Stealing && n > int64_t(INT32_MAX)) split = Split::Dynamic;
    // Static ranges: no more threads than indices. Dynamic and stealing: no more than chunks.
    const int64_t units = split == Split::Static ? n : (n + grain - 1) / grain;
    const int threads = int(std::min<int64_t>(std::max(1, max_threads), units));
    if (threads <= 1 || t_inside_body || !pool().run(n, threads, grain, split, fn, body))
        run_serially(n, grain, split, fn, body);
}

}  // namespace parallel_for_detail

int parallel_for_spin_micros() {
    return int(std::chrono::duration_cast<std::chrono::microseconds>(pool().spin()).count());
}

}  // namespace mst
