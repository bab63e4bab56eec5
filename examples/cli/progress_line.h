// The progress line of the commands that write large files (convert, synth, demo):
// bytes done and total, rate and ETA on one line of stderr, redrawn at most five times a
// second, and only on a terminal. Ctrl-C (SIGINT), SIGTERM or SIGHUP (a closed terminal)
// while one is active asks the library to cancel (the progress callback returns nonzero),
// so the temporary file is removed cleanly.
#pragma once

#include <array>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>

#include <unistd.h>

#include "moestream.h"

namespace mst::cli {

// "42s", "3m07s", "1h02m".
std::string duration_str(double seconds);

struct ProgressLine {
    bool tty = false;  // draw only when stderr is a terminal
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point last{};
};

// An mst_convert_progress_callback: user_data is a ProgressLine. Returns 1 (cancel)
// after SIGINT, SIGTERM or SIGHUP while an InterruptGuard is alive.
int progress_line_callback(uint64_t done, uint64_t total, void *user_data);

// Whether SIGINT, SIGTERM or SIGHUP arrived while an InterruptGuard was alive (for loops
// that stop between steps, as `run` does between prompt batches and tokens).
bool interrupted();

// While alive, SIGINT, SIGTERM and SIGHUP set a flag that progress_line_callback turns
// into a cancel. A second one ends the process as that signal would, for when the step in
// progress takes too long.
class InterruptGuard {
public:
    InterruptGuard();
    ~InterruptGuard();
    InterruptGuard(const InterruptGuard &) = delete;
    InterruptGuard &operator=(const InterruptGuard &) = delete;

private:
    static constexpr std::array<int, 3> kSignals = {SIGINT, SIGTERM, SIGHUP};
    std::array<void (*)(int), 3> previous_{};
};

// 128 + SIGINT, as a shell reports a process that Ctrl-C ended.
constexpr int kInterruptedExit = 130;

// Runs `write` (the mst_convert or mst_synthesize call that takes `params`) with a progress
// line on stderr and an InterruptGuard alive. A line that was drawn is ended before a
// failure returns, so that the error message starts a line of its own.
template <typename Params, typename Write>
mst_status write_with_progress(Params &params, Write &&write) {
    ProgressLine line;
    line.tty = isatty(STDERR_FILENO) != 0;
    params.progress = progress_line_callback;
    params.progress_user_data = &line;
    mst_status status;
    {
        const InterruptGuard interrupt;
        status = write();
    }
    if (line.tty && status != MST_OK) std::fputc('\n', stderr);
    return status;
}

// What `moestream <command>` prints and returns when the file could not be written:
// the status and mst_last_error() on stderr; exit status 130 when it was interrupted.
int write_failed(const char *command, mst_status status);

}  // namespace mst::cli
