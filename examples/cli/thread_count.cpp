#include "thread_count.h"

#include <sched.h>

#include <cstdio>
#include <thread>

#include <fmt/format.h>

namespace mst::cli {

int32_t available_cores() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    const unsigned online = std::thread::hardware_concurrency();
    return online > 0 ? int32_t(online) : 1;
}

int32_t thread_count_from(const Args &args, const std::string &name) {
    const int64_t requested = args.int_in(name, 0, 0, std::numeric_limits<int32_t>::max());
    const int32_t cores = available_cores();
    if (requested <= cores) return int32_t(requested);
    fmt::print(stderr, "warning: --{} {} is more than the {} cores this process can run on; using {}\n", name,
               requested, cores, cores);
    return cores;
}

}  // namespace mst::cli
