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
};

struct RegionTotals {
    uint64_t regions = 0;        // parallel regions run
    double wall_seconds = 0.0;   // summed over regions: from dispatch to the last thread done
    double thread_seconds = 0.0; // wall x threads that took part: the time they were held
    double busy_seconds = 0.0;   // time those threads spent in the loop body
};

struct OpProfileSnapshot {
    std::map<std::string, OpTotals> by_kind;
    std::map<int, OpTotals> by_layer;
    RegionTotals regions;
};

OpProfileSnapshot op_profile_snapshot();
void op_profile_reset();

// Called by the parallel-for at the end of each region (only while profiling is on).
void op_profile_record_region(double wall_seconds, int threads, double busy_seconds);

// Times one op from construction to destruction and charges it to `kind` and the
// current layer; `kind` must outlive the program (a string literal).
class OpTimer {
public:
    OpTimer(const char *kind, uint64_t bytes) {
        if (!op_profile_enabled()) return;
        kind_ = kind;
        bytes_ = bytes;
        start_ = std::chrono::steady_clock::now();
    }
    ~OpTimer() {
        if (kind_) finish();
    }
    OpTimer(const OpTimer &) = delete;
    OpTimer &operator=(const OpTimer &) = delete;

private:
    void finish();
    const char *kind_ = nullptr;
    uint64_t bytes_ = 0;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace mst
