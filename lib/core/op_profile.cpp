#include "core/op_profile.h"

#include <time.h>

#include <mutex>

namespace mst {

namespace op_profile_detail {
std::atomic<bool> enabled{false};
}

namespace {

std::mutex g_mutex;
OpProfileSnapshot g_totals;
int g_layer = -1;
// On each thread that calls regions: the regions' body CPU time on all threads, less the
// calling thread's own CPU time in them (OpTimer::cpu_now).
thread_local double t_region_cpu_adjust = 0.0;

}  // namespace

void op_profile_enable(bool on) { op_profile_detail::enabled.store(on, std::memory_order_relaxed); }

void op_profile_set_layer(int layer) {
    if (!op_profile_enabled()) return;
    std::lock_guard<std::mutex> lock(g_mutex);
    g_layer = layer;
}

OpProfileSnapshot op_profile_snapshot() {
    std::lock_guard<std::mutex> lock(g_mutex);
    return g_totals;
}

void op_profile_reset() {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_totals = OpProfileSnapshot{};
    g_layer = -1;
}

double op_profile_thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

double OpTimer::cpu_now() { return op_profile_thread_cpu_seconds() + t_region_cpu_adjust; }

void op_profile_record_region(double wall_seconds, int threads, double busy_seconds, double busy_cpu_seconds,
                              double caller_cpu_seconds) {
    t_region_cpu_adjust += busy_cpu_seconds - caller_cpu_seconds;
    std::lock_guard<std::mutex> lock(g_mutex);
    RegionTotals &r = g_totals.regions;
    ++r.regions;
    r.wall_seconds += wall_seconds;
    r.thread_seconds += wall_seconds * threads;
    r.busy_seconds += busy_seconds;
    r.busy_cpu_seconds += busy_cpu_seconds;
}

void OpTimer::finish() {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double cpu_seconds = cpu_now() - start_cpu_;
    std::lock_guard<std::mutex> lock(g_mutex);
    for (OpTotals *t : {&g_totals.by_kind[kind_], &g_totals.by_layer[g_layer]}) {
        ++t->calls;
        t->seconds += seconds;
        t->cpu_seconds += cpu_seconds;
        t->bytes += bytes_;
    }
}

}  // namespace mst
