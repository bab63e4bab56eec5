#include "core/process_memory.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace mst {
namespace {

// The "<key>: N kB" lines of a /proc status-like file, in bytes (0 when absent).
uint64_t read_kib_field(const std::string &path, const char *key) {
    std::FILE *f = std::fopen(path.c_str(), "r");
    if (!f) return 0;
    char line[256];
    const size_t key_len = std::strlen(key);
    uint64_t bytes = 0;
    while (std::fgets(line, sizeof line, f)) {
        unsigned long long kib = 0;
        if (std::strncmp(line, key, key_len) == 0 && line[key_len] == ':' &&
            std::sscanf(line + key_len + 1, " %llu kB", &kib) == 1)
            bytes = kib * 1024ull;
    }
    std::fclose(f);
    return bytes;
}

// The first number in a file, or `fallback` when it cannot be read ("max" reads as fallback).
uint64_t read_number(const std::string &path, uint64_t fallback) {
    std::ifstream in(path);
    unsigned long long v = 0;
    return (in >> v) ? uint64_t(v) : fallback;
}

// The lowest of `file` in the cgroup directory `dir` (under `root`) and every parent of
// it: a limit set on a parent binds its children too.
uint64_t lowest_limit_up(const std::string &root, std::string dir, const char *file) {
    uint64_t limit = MemoryLimits::kNoLimit;
    while (true) {
        limit = std::min(limit, read_number(root + dir + (dir.empty() || dir.back() != '/' ? "/" : "") + file,
                                            MemoryLimits::kNoLimit));
        if (dir.empty() || dir == "/") break;
        const size_t slash = dir.find_last_of('/');
        dir = slash == std::string::npos || slash == 0 ? "/" : dir.substr(0, slash);
    }
    return limit;
}

// The memory limit of this process's cgroup: v2 ("0::/path") or v1's memory controller
// ("N:memory:/path" or a list holding "memory"). No limit reads as kNoLimit.
uint64_t cgroup_limit(const MemorySources &sources) {
    std::ifstream in(sources.self_cgroup);
    uint64_t limit = MemoryLimits::kNoLimit;
    for (std::string line; std::getline(in, line);) {
        const size_t a = line.find(':'), b = line.find(':', a + 1);
        if (a == std::string::npos || b == std::string::npos) continue;
        const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
        if (controllers.empty())
            limit = std::min(limit, lowest_limit_up(sources.cgroup_root, path, "memory.max"));
        else if ((',' + controllers + ',').find(",memory,") != std::string::npos)
            limit = std::min(limit, lowest_limit_up(sources.cgroup_root + "/memory", path, "memory.limit_in_bytes"));
    }
    return limit;
}

}  // namespace

ProcessMemory read_process_memory() {
    ProcessMemory m;
    m.rss_bytes = read_kib_field("/proc/self/status", "VmRSS");
    m.peak_rss_bytes = read_kib_field("/proc/self/status", "VmHWM");
    return m;
}

MemoryLimits read_memory_limits(const MemorySources &sources) {
    MemoryLimits limits;
    limits.mem_available = read_kib_field(sources.meminfo, "MemAvailable");
    limits.cgroup_limit = cgroup_limit(sources);
    limits.rss = read_kib_field(sources.self_status, "VmRSS");
    return limits;
}

uint64_t memory_headroom(const MemoryLimits &limits) {
    uint64_t headroom = limits.mem_available ? limits.mem_available : MemoryLimits::kNoLimit;
    if (limits.cgroup_limit != MemoryLimits::kNoLimit)
        headroom = std::min(headroom, limits.cgroup_limit > limits.rss ? limits.cgroup_limit - limits.rss : 0);
    return headroom == MemoryLimits::kNoLimit ? 0 : headroom;
}

uint64_t memory_headroom() { return memory_headroom(read_memory_limits()); }

}  // namespace mst
