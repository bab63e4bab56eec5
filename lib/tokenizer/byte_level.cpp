#include "tokenizer/byte_level.h"

#include <array>
#include <cstdint>

#include "tokenizer/utf8.h"

namespace mst::byte_level {

namespace {

struct Tables {
    std::array<char32_t, 256> to_char{};
    // Indexed by code point; the alphabet lies entirely below U+0144.
    std::array<int16_t, 512> to_byte{};
    std::array<std::string, 256> spelling;

    Tables() {
        to_byte.fill(-1);
        const auto printable = [](int b) {
            return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        };
        char32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const char32_t c = printable(b) ? static_cast<char32_t>(b) : next++;
            to_char[static_cast<size_t>(b)] = c;
            to_byte[c] = static_cast<int16_t>(b);
            utf8::append(spelling[static_cast<size_t>(b)], c);
        }
    }
};

const Tables &tables() {
    static const Tables t;
    return t;
}

}  // namespace

char32_t char_for_byte(unsigned char b) { return tables().to_char[b]; }

int byte_for_char(char32_t c) { return c < 512 ? tables().to_byte[c] : -1; }

void encode_append(std::string_view raw, std::string &out) {
    const Tables &t = tables();
    for (char ch : raw) out += t.spelling[static_cast<unsigned char>(ch)];
}

bool decode_append(std::string_view token, std::string &out) {
    const size_t mark = out.size();
    size_t pos = 0;
    while (pos < token.size()) {
        const utf8::Decoded d = utf8::decode_at(token, pos);
        const int b = d.valid ? byte_for_char(d.cp) : -1;
        if (b < 0) {
            out.resize(mark);
            return false;
        }
        out.push_back(static_cast<char>(b));
        pos += d.length;
    }
    return true;
}

}  // namespace mst::byte_level
