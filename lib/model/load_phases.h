// Where load_model's wall time goes, step by step (open and parse, tokenizer, resident
// weights, ...): bench_decode prints it so that a load can be compared with llama.cpp's
// phase by phase rather than as one number. CPU time (the whole process's: a phase may run
// threads) is there because wall time on a shared machine also counts waits for a core.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <string>
#include <vector>

namespace mst {

struct LoadPhase {
    std::string name;
    double seconds = 0;
    double cpu_seconds = 0;  // user + system, every thread of the process
};

// Records the time since the previous mark (or construction) under each mark's name.
class LoadPhaseTimer {
public:
    explicit LoadPhaseTimer(std::vector<LoadPhase> &phases) : phases_(phases) {}
    void mark(std::string name) {
        const auto now = std::chrono::steady_clock::now();
        const double cpu = process_cpu_seconds();
        phases_.push_back({std::move(name), std::chrono::duration<double>(now - last_).count(), cpu - last_cpu_});
        last_ = now;
        last_cpu_ = cpu;
    }

private:
    static double process_cpu_seconds() {
        rusage u{};
        getrusage(RUSAGE_SELF, &u);
        return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
    }

    std::vector<LoadPhase> &phases_;
    std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
    double last_cpu_ = process_cpu_seconds();
};

}  // namespace mst
