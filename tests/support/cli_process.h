// Runs the moestream CLI as a child process for the CLI tests: arguments passed as they
// are (no shell quoting), stdout and stderr captured apart, and the two things a shell
// pipe cannot do: send SIGINT once the program has printed some output, and give it a
// terminal on stderr (a pseudo-terminal) as a user's shell would.
#pragma once

#include <string>
#include <vector>

namespace mst::test {

struct CliResult {
    int status = -1;       // exit status; -1 when it did not exit normally
    int term_signal = 0;   // the signal that ended it, if one did
    std::string out, err;  // stdout, stderr
};

struct CliRunOptions {
    // Send SIGINT once stdout has this many bytes (0: never).
    size_t interrupt_after_stdout_bytes = 0;
    // Give the child a pseudo-terminal as its stderr.
    bool stderr_on_terminal = false;
};

CliResult run_cli(const std::string &binary, const std::vector<std::string> &args,
                  const CliRunOptions &options = {});

}  // namespace mst::test
