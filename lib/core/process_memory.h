// The process's own resident memory, read from /proc/self/status (0 where unavailable),
// and how much more it may take before the system or its cgroup refuses.
#pragma once

#include <cstdint>

namespace mst {

struct ProcessMemory {
    uint64_t rss_bytes = 0;       // VmRSS
    uint64_t peak_rss_bytes = 0;  // VmHWM
};

ProcessMemory read_process_memory();

// Bytes this process could still fill with anonymous memory: the lower of the system's
// MemAvailable and, under a memory cgroup limit (v2 memory.max or v1
// memory.limit_in_bytes), that limit less the process's resident size (page cache the
// cgroup holds is reclaimable, so it does not count). 0 when neither can be read.
uint64_t memory_headroom();

}  // namespace mst
