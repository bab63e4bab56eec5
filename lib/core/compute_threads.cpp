#include "core/compute_threads.h"

#include <sched.h>

#include <algorithm>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace mst {

int usable_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
    return std::max(1, int(std::thread::hardware_concurrency()));
}

int resolve_compute_threads(long long requested, const char *what) {
    if (requested < 0) fail(MST_ERR_INVALID_ARGUMENT, "{} must not be negative, got {}", what, requested);
    if (requested == 0) return 0;
    const int cpus = usable_cpus();
    if (requested > cpus) {
        log(MST_LOG_WARN, "{} {} exceeds the {} CPUs this process may use; using {}", what, requested, cpus, cpus);
        return cpus;
    }
    return int(requested);
}

}  // namespace mst
