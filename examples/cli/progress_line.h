// The progress line of the commands that write large files (convert, synth, demo):
// bytes done and total, rate and ETA on one line of stderr, redrawn at most five times a
// second, and only on a terminal. Ctrl-C while one is active asks the library to cancel
// (the progress callback returns nonzero), so the temporary file is removed cleanly.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <string>

namespace mst::cli {

// "42s", "3m07s", "1h02m".
std::string duration_str(double seconds);

struct ProgressLine {
    bool tty = false;  // draw only when stderr is a terminal
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point last{};
};

// An mst_convert_progress_callback: user_data is a ProgressLine. Returns 1 (cancel)
// after SIGINT while an InterruptGuard is alive.
int progress_line_callback(uint64_t done, uint64_t total, void *user_data);

// Whether SIGINT arrived while an InterruptGuard was alive (for loops that stop between
// steps, as `run` does between prompt batches and tokens).
bool interrupted();

// While alive, SIGINT sets a flag that progress_line_callback turns into a cancel. A second
// SIGINT ends the process as SIGINT would, for when the step in progress takes too long.
class InterruptGuard {
public:
    InterruptGuard();
    ~InterruptGuard();
    InterruptGuard(const InterruptGuard &) = delete;
    InterruptGuard &operator=(const InterruptGuard &) = delete;

private:
    void (*previous_)(int);
};

}  // namespace mst::cli
