// What the test process holds of the operating system's resources, read from /proc/self:
// open file descriptors, threads, mapped regions and their bytes. A test that creates and
// destroys something many times compares these before and after, to find what a cycle
// leaves behind (a driver opens device files and maps memory per instance and device).
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>

namespace mst::test {

struct ProcessResources {
    int64_t fds = 0;             // entries of /proc/self/fd
    int64_t threads = 0;         // Threads: of /proc/self/status
    int64_t mapped_regions = 0;  // lines of /proc/self/maps
    int64_t mapped_bytes = 0;    // their sizes summed
};

inline std::ostream &operator<<(std::ostream &os, const ProcessResources &r) {
    return os << r.fds << " fds, " << r.threads << " threads, " << r.mapped_regions << " mapped regions of "
              << (r.mapped_bytes >> 20) << " MiB";
}

inline std::string to_string(const ProcessResources &r) {
    std::ostringstream os;
    os << r;
    return os.str();
}

inline ProcessResources process_resources() {
    ProcessResources r;
    for ([[maybe_unused]] const auto &e : std::filesystem::directory_iterator("/proc/self/fd")) ++r.fds;
    --r.fds;  // the directory iterator's own descriptor
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("Threads:", 0) == 0) r.threads = std::stoll(line.substr(8));
    std::ifstream maps("/proc/self/maps");
    for (std::string line; std::getline(maps, line);) {
        unsigned long long lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%llx-%llx", &lo, &hi) != 2) continue;
        ++r.mapped_regions;
        r.mapped_bytes += int64_t(hi - lo);
    }
    return r;
}

}  // namespace mst::test
