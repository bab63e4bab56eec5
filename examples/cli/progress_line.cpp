#include "progress_line.h"

#include <atomic>
#include <cstdio>

#include <fmt/format.h>

#include "human.h"

namespace mst::cli {
namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) {
    if (g_interrupted.exchange(true)) {
        std::signal(SIGINT, SIG_DFL);
        std::raise(SIGINT);
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
    previous_ = std::signal(SIGINT, on_sigint);
}

InterruptGuard::~InterruptGuard() { std::signal(SIGINT, previous_); }

}  // namespace mst::cli
