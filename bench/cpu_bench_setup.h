// The setup bench_decode and bench_prefill share: a model loaded on the CPU backend with
// its load timed, the process's CPU seconds, and the fixed pseudo-random token ids both
// give the model (the ids compare_llama_cpp.sh gives both engines, with salt 0).
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/loaded_model.h"

namespace mst::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// User + system CPU seconds of every thread of the process so far: on a shared machine the
// work done, where wall time also counts the waits for cores that other processes hold.
inline double process_cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

struct CpuModel {
    std::unique_ptr<LoadedModel> model;
    double load_seconds = 0, load_cpu_seconds = 0;
};

// Loads `path` on the CPU backend with `threads` threads and an expert cache of
// `cache_bytes`; throws as load_model does.
inline CpuModel load_cpu_model(const std::string &path, int threads, uint64_t cache_bytes,
                               const std::string &storage = "auto", bool verify_checksums = true) {
    LoadOptions lo;
    lo.backend = "cpu";
    lo.storage = storage;
    lo.n_threads = threads;
    lo.expert_cache_bytes = cache_bytes;
    lo.verify_checksums = verify_checksums;
    CpuModel m;
    const double cpu0 = process_cpu_seconds();
    const auto t0 = Clock::now();
    m.model = load_model(path, lo);
    m.load_seconds = seconds_since(t0);
    m.load_cpu_seconds = process_cpu_seconds() - cpu0;
    return m;
}

// n token ids, (i * 7919 + 13 + salt) mod vocab.
inline std::vector<int32_t> token_sequence(int n, int32_t vocab, uint64_t salt) {
    std::vector<int32_t> ids;
    for (int i = 0; i < n; ++i) ids.push_back(int32_t((uint64_t(i) * 7919u + 13u + salt) % uint64_t(vocab)));
    return ids;
}

}  // namespace mst::bench
