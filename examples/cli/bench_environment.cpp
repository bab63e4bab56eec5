#include "bench_environment.h"

#include <sys/utsname.h>

#include <fstream>

#include <fmt/format.h>

#include "moestream.h"
#include "thread_count.h"

#ifndef MST_BUILD_TYPE
#define MST_BUILD_TYPE ""
#endif

namespace mst::cli {
namespace {

// The first "model name" of /proc/cpuinfo (x86, and arm64 kernels that report it).
std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("model name", 0) != 0) continue;
        const size_t colon = line.find(':');
        if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
    return "unknown";
}

std::string kernel() {
    utsname u{};
    if (uname(&u) != 0) return "unknown";
    return fmt::format("{} {} {}", u.sysname, u.release, u.machine);
}

}  // namespace

BenchEnvironment bench_environment(int32_t requested_threads) {
    BenchEnvironment env;
    env.version = mst_version_string();
    env.build_type = *MST_BUILD_TYPE ? MST_BUILD_TYPE : "unknown";
    env.cpu_model = cpu_model();
    env.kernel = kernel();
    env.threads = requested_threads > 0 ? requested_threads : available_cores();
    return env;
}

std::string environment_line(const BenchEnvironment &env) {
    return fmt::format("moestream {} ({} build), {}, {} compute threads, {}", env.version, env.build_type,
                       env.cpu_model, env.threads, env.kernel);
}

nlohmann::json environment_json(const BenchEnvironment &env) {
    return {{"moestream_version", env.version}, {"build_type", env.build_type}, {"cpu_model", env.cpu_model},
            {"threads", env.threads}, {"kernel", env.kernel}};
}

}  // namespace mst::cli
