// Where load_model's wall time goes, step by step (open and parse, tokenizer, resident
// weights, ...): bench_decode prints it so that a load can be compared with llama.cpp's
// phase by phase rather than as one number.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace mst {

struct LoadPhase {
    std::string name;
    double seconds = 0;
};

// Records the time since the previous mark (or construction) under each mark's name.
class LoadPhaseTimer {
public:
    explicit LoadPhaseTimer(std::vector<LoadPhase> &phases) : phases_(phases) {}
    void mark(std::string name) {
        const auto now = std::chrono::steady_clock::now();
        phases_.push_back({std::move(name), std::chrono::duration<double>(now - last_).count()});
        last_ = now;
    }

private:
    std::vector<LoadPhase> &phases_;
    std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace mst
