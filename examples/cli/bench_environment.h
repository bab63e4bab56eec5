// What a `bench` result was measured on, so that two results can be compared or told
// apart: the moestream version and build type, the CPU, the compute threads, the kernel.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace mst::cli {

struct BenchEnvironment {
    std::string version, build_type, cpu_model, kernel;
    int32_t threads = 0;  // compute threads in effect (all cores when none were asked for)
};

// `requested_threads` as the model params carry it (0 = all cores).
BenchEnvironment bench_environment(int32_t requested_threads);

std::string environment_line(const BenchEnvironment &env);
nlohmann::json environment_json(const BenchEnvironment &env);

}  // namespace mst::cli
