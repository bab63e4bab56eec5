// The GPT-2 byte-level alphabet: every byte value is shown as one printable code point so
// that a byte-level BPE vocabulary never holds whitespace or control characters.
// Printable Latin-1 bytes map to themselves; the other 68 bytes take U+0100.. in order.
#pragma once

#include <string>
#include <string_view>

namespace mst::byte_level {

// The code point that stands for byte b.
char32_t char_for_byte(unsigned char b);

// The byte that code point c stands for, or -1 when c is not in the alphabet.
int byte_for_char(char32_t c);

// Appends the alphabet spelling (UTF-8) of every byte of raw.
void encode_append(std::string_view raw, std::string &out);

// Appends the bytes that token spells when every one of its characters is in the
// alphabet and returns true; otherwise appends nothing and returns false.
bool decode_append(std::string_view token, std::string &out);

}  // namespace mst::byte_level
