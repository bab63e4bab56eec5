#include "tokenizer/utf8.h"

namespace mst::utf8 {

namespace {

bool in_range(unsigned char b, unsigned char lo, unsigned char hi) { return b >= lo && b <= hi; }

}  // namespace

Decoded decode_at(std::string_view s, size_t pos) {
    const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[pos + i]); };
    const size_t left = s.size() - pos;
    const unsigned char b0 = byte(0);
    if (b0 < 0x80) return {b0, 1, true};

    // The first continuation byte's allowed range depends on the lead byte: this is what
    // rules out overlong forms, surrogates and code points above U+10FFFF.
    uint32_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    char32_t cp = 0;
    if (in_range(b0, 0xC2, 0xDF)) {
        need = 1;
        cp = b0 & 0x1F;
    } else if (b0 == 0xE0) {
        need = 2, lo = 0xA0;
        cp = b0 & 0x0F;
    } else if (in_range(b0, 0xE1, 0xEC) || in_range(b0, 0xEE, 0xEF)) {
        need = 2;
        cp = b0 & 0x0F;
    } else if (b0 == 0xED) {
        need = 2, hi = 0x9F;
        cp = b0 & 0x0F;
    } else if (b0 == 0xF0) {
        need = 3, lo = 0x90;
        cp = b0 & 0x07;
    } else if (in_range(b0, 0xF1, 0xF3)) {
        need = 3;
        cp = b0 & 0x07;
    } else if (b0 == 0xF4) {
        need = 3, hi = 0x8F;
        cp = b0 & 0x07;
    } else {
        return {0xFFFD, 1, false};
    }
    for (uint32_t i = 1; i <= need; ++i) {
        if (i >= left) return {0xFFFD, i, false};
        const unsigned char b = byte(i);
        const bool ok = i == 1 ? in_range(b, lo, hi) : in_range(b, 0x80, 0xBF);
        if (!ok) return {0xFFFD, i, false};
        cp = (cp << 6) | (b & 0x3F);
    }
    return {cp, need + 1, true};
}

void append(std::string &out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

bool is_valid(std::string_view s) {
    size_t pos = 0;
    while (pos < s.size()) {
        if (static_cast<unsigned char>(s[pos]) < 0x80) {
            ++pos;
            continue;
        }
        const Decoded d = decode_at(s, pos);
        if (!d.valid) return false;
        pos += d.length;
    }
    return true;
}

std::string to_valid(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 8);
    size_t pos = 0;
    while (pos < s.size()) {
        const Decoded d = decode_at(s, pos);
        if (d.valid) {
            out.append(s.substr(pos, d.length));
        } else {
            append(out, 0xFFFD);
        }
        pos += d.length;
    }
    return out;
}

}  // namespace mst::utf8
