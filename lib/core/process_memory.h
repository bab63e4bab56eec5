// The process's own resident memory, read from /proc/self/status (0 where unavailable),
// and how much more it may take before the system or its cgroup refuses.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

namespace mst {

struct ProcessMemory {
    uint64_t rss_bytes = 0;       // VmRSS
    uint64_t peak_rss_bytes = 0;  // VmHWM
};

ProcessMemory read_process_memory();

// Where the memory limits are read from (tests point these at files of their own).
struct MemorySources {
    std::string meminfo = "/proc/meminfo";
    std::string self_cgroup = "/proc/self/cgroup";
    std::string cgroup_root = "/sys/fs/cgroup";  // v1's memory controller is <root>/memory
    std::string self_status = "/proc/self/status";
};

struct MemoryLimits {
    static constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();
    uint64_t mem_available = 0;       // the system's MemAvailable; 0 when unreadable
    uint64_t cgroup_limit = kNoLimit; // the lowest memory limit of the cgroup and its parents
    uint64_t rss = 0;                 // the process's resident size now
};

MemoryLimits read_memory_limits(const MemorySources &sources = {});

// Bytes this process could still fill with anonymous memory: the lower of MemAvailable
// and, under a cgroup limit (v2 memory.max or v1 memory.limit_in_bytes, the lowest of the
// cgroup and its parents), that limit less the process's resident size (page cache the
// cgroup holds is reclaimable, so it does not count). 0 when neither can be read.
uint64_t memory_headroom(const MemoryLimits &limits);
uint64_t memory_headroom();

}  // namespace mst
