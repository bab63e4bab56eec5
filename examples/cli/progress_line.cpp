#include "progress_line.h"

#include <atomic>
#include <cstdio>

#include <fmt/format.h>

#include "human.h"

namespace mst::cli {
namespace {

std::atomic<bool> g_interrupted{false};

// A second signal ends the process as that signal would, for when the step in progress
// takes too long to reach a cancel.
extern "C" void on_interrupt(int sig) {
    if (g_interrupted.exchange(true)) {
        std::signal(sig, SIG_DFL);
        std::raise(sig);
    }
}

}  // namespace

std::string duration_str(double seconds) {
    const auto s = uint64_t(seconds + 0.5);
    if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, s / 60 % 60);
    if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
    return fmt::format("{}s", s);
}

int progress_line_callback(uint64_t done, uint64_t total, void *user_data) {
    auto &line = *static_cast<ProgressLine *>(user_data);
    if (g_interrupted.load()) return 1;
    if (!line.tty) return 0;
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - line.last < std::chrono::milliseconds(200)) return 0;
    line.last = now;
    const double elapsed = std::chrono::duration<double>(now - line.start).count();
    const double rate = elapsed > 0 ? double(done) / elapsed : 0.0;
    const std::string eta = rate > 0 && done < total ? duration_str(double(total - done) / rate) : "-";
    fmt::print(stderr, "\r{} / {}  {}/s  ETA {}   ", bytes_str(done), bytes_str(total), bytes_str(uint64_t(rate)), eta);
    if (done >= total) fmt::print(stderr, "\n");
    std::fflush(stderr);
    return 0;
}

bool interrupted() { return g_interrupted.load(); }

InterruptGuard::InterruptGuard() {
    g_interrupted.store(false);
    for (size_t i = 0; i < kSignals.size(); ++i) previous_[i] = std::signal(kSignals[i], on_interrupt);
}

InterruptGuard::~InterruptGuard() {
    for (size_t i = 0; i < kSignals.size(); ++i) std::signal(kSignals[i], previous_[i]);
}

int write_failed(const char *command, mst_status status) {
    fmt::print(stderr, "moestream {}: {}: {}\n", command, mst_status_string(status), mst_last_error());
    return status == MST_ERR_CANCELLED ? kInterruptedExit : 1;
}

}  // namespace mst::cli
