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
// On each thread that calls regions: their wall time so far, and the op running now.
thread_local double t_region_wall = 0.0;
thread_local const char *t_current_kind = nullptr;

void add_region(RegionTotals &r, const RegionSample &s) {
    ++r.regions;
    r.wall_seconds += s.wall_seconds;
    r.thread_seconds += s.wall_seconds * s.threads;
    r.busy_seconds += s.busy_seconds;
    r.busy_cpu_seconds += s.busy_cpu_seconds;
    r.start_wait_seconds += s.start_wait_seconds;
    r.imbalance_seconds += s.imbalance_seconds;
    r.finish_wait_seconds += s.finish_wait_seconds;
    r.sleeper_wakeups += s.woke_sleepers ? 1 : 0;
}

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

void op_profile_record_region(const RegionSample &region) {
    t_region_cpu_adjust += region.busy_cpu_seconds - region.caller_cpu_seconds;
    t_region_wall += region.wall_seconds;
    std::lock_guard<std::mutex> lock(g_mutex);
    add_region(g_totals.regions, region);
    add_region(g_totals.regions_by_kind[t_current_kind ? t_current_kind : "(no op)"], region);
}

void OpTimer::begin(const char *kind, uint64_t bytes) {
    kind_ = kind;
    bytes_ = bytes;
    outer_kind_ = t_current_kind;
    t_current_kind = kind;
    start_region_ = t_region_wall;
    start_ = std::chrono::steady_clock::now();
    start_cpu_ = cpu_now();
}

void OpTimer::finish() {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double cpu_seconds = cpu_now() - start_cpu_;
    const double region_seconds = t_region_wall - start_region_;
    t_current_kind = outer_kind_;
    std::lock_guard<std::mutex> lock(g_mutex);
    for (OpTotals *t : {&g_totals.by_kind[kind_], &g_totals.by_layer[g_layer]}) {
        ++t->calls;
        t->seconds += seconds;
        t->cpu_seconds += cpu_seconds;
        t->bytes += bytes_;
        t->region_seconds += region_seconds;
    }
}

}  // namespace mst
