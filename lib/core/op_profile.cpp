#include "core/op_profile.h"

#include <mutex>

namespace mst {

namespace op_profile_detail {
std::atomic<bool> enabled{false};
}

namespace {

std::mutex g_mutex;
OpProfileSnapshot g_totals;
int g_layer = -1;

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

void op_profile_record_region(double wall_seconds, int threads, double busy_seconds) {
    std::lock_guard<std::mutex> lock(g_mutex);
    RegionTotals &r = g_totals.regions;
    ++r.regions;
    r.wall_seconds += wall_seconds;
    r.thread_seconds += wall_seconds * threads;
    r.busy_seconds += busy_seconds;
}

void OpTimer::finish() {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::lock_guard<std::mutex> lock(g_mutex);
    for (OpTotals *t : {&g_totals.by_kind[kind_], &g_totals.by_layer[g_layer]}) {
        ++t->calls;
        t->seconds += seconds;
        t->bytes += bytes_;
    }
}

}  // namespace mst
