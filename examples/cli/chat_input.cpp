#include "chat_input.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>

namespace mst::cli {
namespace {

std::atomic<bool> g_chat_interrupted{false};

// A second Ctrl-C before the first was dealt with (an answer whose prompt takes long to
// evaluate) ends the process as SIGINT would.
extern "C" void on_chat_sigint(int) {
    if (g_chat_interrupted.exchange(true)) {
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
    }
}

}  // namespace

ChatInterrupts::ChatInterrupts() {
    g_chat_interrupted.store(false);
    struct sigaction action {};
    action.sa_handler = on_chat_sigint;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: read() at the prompt must return EINTR
    sigaction(SIGINT, &action, &previous_);
}

ChatInterrupts::~ChatInterrupts() {
    sigaction(SIGINT, &previous_, nullptr);
}

bool ChatInterrupts::pending() const { return g_chat_interrupted.load(); }
void ChatInterrupts::clear() { g_chat_interrupted.store(false); }

ChatInput::ChatInput(const ChatInterrupts &interrupts)
    : interrupts_(interrupts), terminal_(isatty(STDIN_FILENO) != 0) {}

ChatInput::LineStatus ChatInput::read_line(std::string &line) {
    for (;;) {
        const size_t newline = buffer_.find('\n');
        if (newline != std::string::npos) {
            line = buffer_.substr(0, newline);
            buffer_.erase(0, newline + 1);
            return LineStatus::Line;
        }
        if (eof_) {
            if (buffer_.empty()) return LineStatus::End;
            line.swap(buffer_);  // a last line without its newline still counts
            buffer_.clear();
            return LineStatus::Line;
        }
        if (interrupts_.pending()) return LineStatus::Interrupted;
        char chunk[4096];
        const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
        if (n > 0) buffer_.append(chunk, size_t(n));
        else if (n == 0) eof_ = true;
        else if (errno == EINTR) {
            if (interrupts_.pending()) return LineStatus::Interrupted;
        } else eof_ = true;  // an unreadable stdin ends the conversation as EOF does
    }
}

Input ChatInput::next() {
    Input input;
    bool continued = false;
    for (;;) {
        if (terminal_) {
            std::fputs(continued ? ". " : "> ", stdout);
            std::fflush(stdout);
        }
        std::string line;
        const LineStatus status = read_line(line);
        if (status == LineStatus::Interrupted) {
            input.status = InputStatus::Interrupted;
            return input;
        }
        if (status == LineStatus::End) {
            // EOF in the middle of a continued message still sends what was typed.
            input.status = continued ? InputStatus::Message : InputStatus::End;
            return input;
        }
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty() && line.back() == '\\') {
            line.pop_back();
            input.text += line;
            input.text += '\n';
            continued = true;
            continue;
        }
        input.text += line;
        input.status = InputStatus::Message;
        return input;
    }
}

}  // namespace mst::cli
