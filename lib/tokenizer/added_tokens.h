// Added tokens (special or not) found in text before pre-tokenization: the leftmost match,
// the longest there, then lstrip / rstrip / single_word as the reference applies them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mst {

struct AddedToken {
    std::string content;
    int32_t id = -1;
    bool special = false;
    bool single_word = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = false;
};

class AddedTokenMatcher {
public:
    // One entry per token to find; pattern is what to look for in the text (the content,
    // or its normalized form for normalized tokens). Empty patterns are ignored.
    struct Entry {
        std::string pattern;
        const AddedToken *token;
    };
    explicit AddedTokenMatcher(std::vector<Entry> entries);

    // A piece of the text: an added token (id >= 0) or plain text (id == -1).
    struct Segment {
        size_t begin, end;
        int32_t id;
    };
    // Appends the segments covering text (valid UTF-8). Matches the reference exactly,
    // including the overlap it produces when an rstrip token's whitespace is followed by
    // a token that begins with whitespace.
    void split(std::string_view text, std::vector<Segment> &out) const;

    bool empty() const { return entries_.empty(); }

private:
    struct Node {
        std::vector<std::pair<unsigned char, int32_t>> children;
        int32_t entry = -1;  // the entry whose pattern ends here
    };
    struct Match {
        size_t begin, end;
        int32_t entry;
    };
    void find_matches(std::string_view text, std::vector<Match> &out) const;
    int32_t child(int32_t node, unsigned char byte) const;

    std::vector<Entry> entries_;
    std::vector<Node> nodes_;
    bool first_byte_[256] = {};
};

}  // namespace mst
