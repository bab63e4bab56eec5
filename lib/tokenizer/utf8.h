// UTF-8 helpers shared by the tokenizer: decoding with the same error rule as Rust's
// String::from_utf8_lossy (each maximal invalid subpart becomes one U+FFFD), because the
// reference tokenizer is written in Rust and its decoder applies that rule.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mst::utf8 {

struct Decoded {
    char32_t cp;      // the code point, or U+FFFD when !valid
    uint32_t length;  // bytes consumed: the sequence, or the maximal invalid subpart
    bool valid;
};

// Decodes the sequence starting at s[pos] (pos < s.size()).
Decoded decode_at(std::string_view s, size_t pos);

void append(std::string &out, char32_t cp);

bool is_valid(std::string_view s);

// s with every maximal invalid subpart replaced by U+FFFD.
std::string to_valid(std::string_view s);

// Byte length of the sequence starting at s[pos] in a string known to be valid.
inline uint32_t length_at(std::string_view s, size_t pos) {
    unsigned char b = static_cast<unsigned char>(s[pos]);
    if (b < 0x80) return 1;
    if (b < 0xE0) return 2;
    if (b < 0xF0) return 3;
    return 4;
}

}  // namespace mst::utf8
