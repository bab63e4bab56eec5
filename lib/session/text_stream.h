// Turns generated token bytes into text for a streaming caller: never splits a UTF-8
// character across callbacks, and holds back text that might be the start of a stop
// string until it is known not to be one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mst {

class TextStream {
public:
    explicit TextStream(std::vector<std::string> stop_strings) : stops_(std::move(stop_strings)) {}

    // Add a token's bytes; returns the text that is now safe to emit.
    std::string push(std::string_view bytes);
    // True once a stop string has appeared; the text before it has been emitted by push.
    bool stopped() const { return stopped_; }
    // At the end of generation: whatever is still held back (never part of a stop string).
    std::string flush();

private:
    std::vector<std::string> stops_;
    std::string pending_;
    bool stopped_ = false;
};

// Length of the longest prefix of `s` that does not end inside a UTF-8 character.
size_t complete_utf8_prefix(std::string_view s);

}  // namespace mst
