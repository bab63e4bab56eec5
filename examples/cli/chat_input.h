// What `moestream chat` reads from the user: whole messages from stdin, a line ending in a
// backslash continuing onto the next, and the SIGINT handling a conversation needs, where
// Ctrl-C stops the answer being written but leaves the program at its prompt.
#pragma once

#include <signal.h>

#include <string>

namespace mst::cli {

// While alive, SIGINT sets a flag instead of ending the process. Installed without
// SA_RESTART so that a Ctrl-C at the prompt interrupts the blocking read of stdin.
class ChatInterrupts {
public:
    ChatInterrupts();
    ~ChatInterrupts();
    ChatInterrupts(const ChatInterrupts &) = delete;
    ChatInterrupts &operator=(const ChatInterrupts &) = delete;

    bool pending() const;  // a SIGINT arrived since the last clear()
    void clear();

private:
    struct ::sigaction previous_ {};
};

enum class InputStatus { Message, End, Interrupted };

struct Input {
    InputStatus status = InputStatus::End;
    std::string text;  // the message, continuation lines joined with '\n'
};

// Reads stdin with read(2), so that a Ctrl-C (EINTR) is seen at once and no stdio buffer
// holds lines back. On a terminal it shows "> " (and ". " for a continued line) on stdout.
class ChatInput {
public:
    explicit ChatInput(const ChatInterrupts &interrupts);
    Input next();
    bool terminal() const { return terminal_; }

private:
    enum class LineStatus { Line, End, Interrupted };
    LineStatus read_line(std::string &line);

    const ChatInterrupts &interrupts_;
    bool terminal_;
    std::string buffer_;
    bool eof_ = false;
};

}  // namespace mst::cli
