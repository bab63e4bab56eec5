// Optional timing of the compute ops a forward pass runs, for `bench_decode --profile`
// (bench/README.md "Decode profile"): per op kind and per layer, the calls, seconds and
// weight/cache bytes each op read, and per parallel region the time its threads were busy
// against the time they were held. Off by default; when off, each op pays one relaxed
// load of a flag and nothing else. Ops record from the thread that calls the backend;
// the counters are process-wide, meant for one decoding session at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace mst {

namespace op_profile_detail {
extern std::atomic<bool> enabled;
}

inline bool op_profile_enabled() { return op_profile_detail::enabled.load(std::memory_order_relaxed); }
void op_profile_enable(bool on);

// The layer ops are charged to until the next call; -1 (the default) for work outside the
// layers (embeddings, final norm, LM head). Models call it at the top of each layer.
void op_profile_set_layer(int layer);

struct OpTotals {
    uint64_t calls = 0;
    double seconds = 0.0;
    uint64_t bytes = 0;  // weight, KV-cache and expert bytes read
    // CPU time of the threads working for the op: its parallel regions' loop bodies on
    // every thread, plus the calling thread outside those regions. Unlike `seconds` it
    // leaves out waiting for a thread and time descheduled, so on a shared machine it
    // still says what the op costs.
    double cpu_seconds = 0.0;
    // Wall time of the op's parallel regions; seconds - region_seconds is the part of the
    // op the calling thread ran alone (serial, the other threads idle).
    double region_seconds = 0.0;
};

struct RegionTotals {
    uint64_t regions = 0;        // parallel regions run
    double wall_seconds = 0.0;   // summed over regions: from dispatch to the last thread done
    double thread_seconds = 0.0; // wall x threads that took part: the time they were held
    double busy_seconds = 0.0;   // time those threads spent in the loop body
    double busy_cpu_seconds = 0.0;  // their CPU time in the body: busy_seconds less time descheduled
    // The rest of thread_seconds, summed over the threads that took part (busy + these three
    // = thread_seconds): from the region's dispatch to a thread's body start (the hand-off
    // out: a worker's wake-up), from a thread's body end to the last thread's (imbalance:
    // the threads done first wait), and from the last body end to the caller's return (the
    // hand-off back, every thread's).
    double start_wait_seconds = 0.0;
    double imbalance_seconds = 0.0;
    double finish_wait_seconds = 0.0;
    uint64_t sleeper_wakeups = 0;  // regions that had to wake a sleeping worker (futex)
};

// One region as the parallel-for measured it (times in seconds from its dispatch).
struct RegionSample {
    double wall_seconds = 0.0;
    int threads = 1;
    double busy_seconds = 0.0;
    double busy_cpu_seconds = 0.0;
    double caller_cpu_seconds = 0.0;  // the calling thread's CPU time in the whole region
    double start_wait_seconds = 0.0;
    double imbalance_seconds = 0.0;
    double finish_wait_seconds = 0.0;
    bool woke_sleepers = false;  // a worker slept (past its spin) and was woken by a futex call
};

struct OpProfileSnapshot {
    std::map<std::string, OpTotals> by_kind;
    std::map<int, OpTotals> by_layer;
    RegionTotals regions;
    // The same split by the op that ran the region ("(no op)" outside any OpTimer).
    std::map<std::string, RegionTotals> regions_by_kind;
};

OpProfileSnapshot op_profile_snapshot();
void op_profile_reset();

// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), in seconds.
double op_profile_thread_cpu_seconds();

// Called by the parallel-for, on the thread that ran the region, at the end of each region
// (only while profiling is on): busy_cpu_seconds is the body's CPU time summed over the
// threads, caller_cpu_seconds the calling thread's CPU time in the whole region (its share,
// and spinning for the others), which the current op's count replaces by busy_cpu_seconds.
void op_profile_record_region(const RegionSample &region);

// Times one op from construction to destruction and charges it to `kind` and the
// current layer; `kind` must outlive the program (a string literal).
class OpTimer {
public:
    OpTimer(const char *kind, uint64_t bytes) {
        if (!op_profile_enabled()) return;
        begin(kind, bytes);
    }
    ~OpTimer() {
        if (kind_) finish();
    }
    OpTimer(const OpTimer &) = delete;
    OpTimer &operator=(const OpTimer &) = delete;

private:
    void begin(const char *kind, uint64_t bytes);
    void finish();
    // This thread's CPU time with its regions' calling-thread time replaced by their
    // bodies' time on every thread (see op_profile_record_region).
    static double cpu_now();
    const char *kind_ = nullptr;
    uint64_t bytes_ = 0;
    std::chrono::steady_clock::time_point start_;
    double start_cpu_ = 0.0;
    double start_region_ = 0.0;   // this thread's region wall so far
    const char *outer_kind_ = nullptr;  // the op this one runs inside, if any
};

}  // namespace mst
