// The process's own resident memory, read from /proc/self/status (0 where unavailable).
#pragma once

#include <cstdint>

namespace mst {

struct ProcessMemory {
    uint64_t rss_bytes = 0;       // VmRSS
    uint64_t peak_rss_bytes = 0;  // VmHWM
};

ProcessMemory read_process_memory();

}  // namespace mst
