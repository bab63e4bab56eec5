#include "core/process_memory.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>

namespace mst {

ProcessMemory read_process_memory() {
    ProcessMemory m;
    std::FILE *f = std::fopen("/proc/self/status", "r");
    if (!f) return m;
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
        unsigned long long kib = 0;
        if (std::sscanf(line, "VmRSS: %llu kB", &kib) == 1) m.rss_bytes = kib * 1024ull;
        else if (std::sscanf(line, "VmHWM: %llu kB", &kib) == 1) m.peak_rss_bytes = kib * 1024ull;
    }
    std::fclose(f);
    return m;
}

namespace {

// The first number in a file, or `fallback` when it cannot be read ("max" reads as fallback).
uint64_t read_number(const std::string &path, uint64_t fallback) {
    std::ifstream in(path);
    unsigned long long v = 0;
    return (in >> v) ? uint64_t(v) : fallback;
}

uint64_t mem_available() {
    std::FILE *f = std::fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kib = 0;
    uint64_t bytes = 0;
    while (std::fgets(line, sizeof line, f))
        if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) bytes = kib * 1024ull;
    std::fclose(f);
    return bytes;
}

// The memory limit of this process's cgroup: v2 ("0::/path") or v1's memory controller
// ("N:memory:/path" or a list holding "memory"). No limit reads as uint64 max.
uint64_t cgroup_limit() {
    constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();
    std::ifstream in("/proc/self/cgroup");
    uint64_t limit = kNone;
    for (std::string line; std::getline(in, line);) {
        const size_t a = line.find(':'), b = line.find(':', a + 1);
        if (a == std::string::npos || b == std::string::npos) continue;
        const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
        if (controllers.empty())
            limit = std::min(limit, read_number("/sys/fs/cgroup" + path + "/memory.max", kNone));
        else if ((',' + controllers + ',').find(",memory,") != std::string::npos)
            limit = std::min(limit, read_number("/sys/fs/cgroup/memory" + path + "/memory.limit_in_bytes", kNone));
    }
    return limit;
}

}  // namespace

uint64_t memory_headroom() {
    const uint64_t available = mem_available();
    const uint64_t limit = cgroup_limit();
    uint64_t headroom = available ? available : std::numeric_limits<uint64_t>::max();
    if (limit != std::numeric_limits<uint64_t>::max()) {
        const uint64_t rss = read_process_memory().rss_bytes;
        headroom = std::min(headroom, limit > rss ? limit - rss : 0);
    }
    return headroom == std::numeric_limits<uint64_t>::max() ? 0 : headroom;
}

}  // namespace mst
