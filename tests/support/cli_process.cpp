#include "cli_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace mst::test {
namespace {

// Reads what is there; false at the end (EOF, or EIO from a terminal whose other side closed).
bool drain(int fd, std::string &into) {
    char buffer[4096];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
        into.append(buffer, size_t(n));
        return true;
    }
    return n < 0 && (errno == EINTR || errno == EAGAIN);
}

}  // namespace

CliResult run_cli(const std::string &binary, const std::vector<std::string> &args, const CliRunOptions &options) {
    CliResult result;
    int out_pipe[2], err_pipe[2] = {-1, -1};
    if (pipe(out_pipe) != 0) return result;
    int err_read = -1, err_child = -1;
    if (options.stderr_on_terminal) {
        err_read = posix_openpt(O_RDWR | O_NOCTTY);
        if (err_read < 0 || grantpt(err_read) != 0 || unlockpt(err_read) != 0) return result;
        err_child = ::open(ptsname(err_read), O_RDWR | O_NOCTTY);
    } else {
        if (pipe(err_pipe) != 0) return result;
        err_read = err_pipe[0];
        err_child = err_pipe[1];
    }
    if (err_child < 0) return result;

    const pid_t pid = fork();
    if (pid == 0) {
        dup2(out_pipe[1], STDOUT_FILENO);
        dup2(err_child, STDERR_FILENO);
        close(out_pipe[0]);
        close(err_read);
        std::vector<char *> argv;
        argv.push_back(const_cast<char *>(binary.c_str()));
        for (const std::string &a : args) argv.push_back(const_cast<char *>(a.c_str()));
        argv.push_back(nullptr);
        setenv("OMP_WAIT_POLICY", "passive", 0);
        execv(binary.c_str(), argv.data());
        _exit(127);
    }
    close(out_pipe[1]);
    close(err_child);
    if (pid < 0) {
        close(out_pipe[0]);
        close(err_read);
        return result;
    }
    bool out_open = true, err_open = true, interrupted = false;
    while (out_open || err_open) {
        pollfd fds[2] = {{out_open ? out_pipe[0] : -1, POLLIN, 0}, {err_open ? err_read : -1, POLLIN, 0}};
        if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
        if (out_open && fds[0].revents) out_open = drain(out_pipe[0], result.out);
        if (err_open && fds[1].revents) err_open = drain(err_read, result.err);
        if (!interrupted && options.interrupt_after_stdout_bytes > 0 &&
            result.out.size() >= options.interrupt_after_stdout_bytes) {
            kill(pid, SIGINT);
            interrupted = true;
        }
    }
    close(out_pipe[0]);
    close(err_read);
    int raw = 0;
    while (waitpid(pid, &raw, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(raw)) result.status = WEXITSTATUS(raw);
    if (WIFSIGNALED(raw)) result.term_signal = WTERMSIG(raw);
    return result;
}

}  // namespace mst::test
