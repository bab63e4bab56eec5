#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/unicode_props.h"
#include "tokenizer/utf8.h"

namespace mst {

namespace {

// The code point that ends text[0, end) (end > 0, valid UTF-8).
char32_t last_char(std::string_view text, size_t end) {
    size_t begin = end - 1;
    while (begin > 0 && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80) --begin;
    return utf8::decode_at(text, begin).cp;
}

// Start of the run of whitespace that ends at `end`.
size_t whitespace_start_before(std::string_view text, size_t end) {
    while (end > 0) {
        size_t begin = end - 1;
        while (begin > 0 && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80) --begin;
        if (!unicode::is_white_space(utf8::decode_at(text, begin).cp)) break;
        end = begin;
    }
    return end;
}

// End of the run of whitespace that starts at `begin`.
size_t whitespace_end_after(std::string_view text, size_t begin) {
    while (begin < text.size()) {
        const utf8::Decoded d = utf8::decode_at(text, begin);
        if (!unicode::is_white_space(d.cp)) break;
        begin += d.length;
    }
    return begin;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<Entry> entries) {
    nodes_.emplace_back();
    for (Entry &entry : entries) {
        if (entry.pattern.empty()) continue;
        const auto index = static_cast<int32_t>(entries_.size());
        int32_t node = 0;
        for (char ch : entry.pattern) {
            const auto byte = static_cast<unsigned char>(ch);
            int32_t next = child(node, byte);
            if (next < 0) {
                next = static_cast<int32_t>(nodes_.size());
                nodes_[static_cast<size_t>(node)].children.emplace_back(byte, next);
                nodes_.emplace_back();
            }
            node = next;
        }
        // Two tokens with one pattern: the later one wins, as in the reference's maps.
        nodes_[static_cast<size_t>(node)].entry = index;
        first_byte_[static_cast<unsigned char>(entry.pattern[0])] = true;
        entries_.push_back(std::move(entry));
    }
}

int32_t AddedTokenMatcher::child(int32_t node, unsigned char byte) const {
    for (const auto &[b, next] : nodes_[static_cast<size_t>(node)].children)
        if (b == byte) return next;
    return -1;
}

void AddedTokenMatcher::find_matches(std::string_view text, std::vector<Match> &out) const {
    size_t pos = 0;
    while (pos < text.size()) {
        if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
            ++pos;
            continue;
        }
        int32_t node = 0;
        int32_t best_entry = -1;
        size_t best_end = 0;
        for (size_t i = pos; i < text.size(); ++i) {
            node = child(node, static_cast<unsigned char>(text[i]));
            if (node < 0) break;
            if (nodes_[static_cast<size_t>(node)].entry >= 0) {
                best_entry = nodes_[static_cast<size_t>(node)].entry;
                best_end = i + 1;
            }
        }
        if (best_entry < 0) {
            ++pos;
            continue;
        }
        out.push_back({pos, best_end, best_entry});
        pos = best_end;
    }
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment> &out) const {
    if (text.empty()) return;
    std::vector<Match> matches;
    if (!entries_.empty()) find_matches(text, matches);
    size_t start_offset = 0;
    for (const Match &m : matches) {
        const AddedToken &token = *entries_[static_cast<size_t>(m.entry)].token;
        size_t start = m.begin, stop = m.end;
        if (token.single_word) {
            const bool word_before = start > 0 && unicode::is_word_char(last_char(text, start));
            const bool word_after = stop < text.size() && unicode::is_word_char(utf8::decode_at(text, stop).cp);
            if (word_before || word_after) continue;
        }
        if (token.lstrip) start = std::max(whitespace_start_before(text, start), start_offset);
        if (token.rstrip) stop = whitespace_end_after(text, stop);
        if (start_offset < start) out.push_back({start_offset, start, -1});
        out.push_back({start, stop, token.id});
        start_offset = stop;
    }
    if (start_offset != text.size()) out.push_back({start_offset, text.size(), -1});
}

}  // namespace mst
