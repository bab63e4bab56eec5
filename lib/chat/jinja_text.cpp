#include "chat/jinja_text.h"

#include <unicode/uchar.h>

namespace mst::jinja {

std::vector<char32_t> decode_utf8(std::string_view s) {
    std::vector<char32_t> out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        const auto b = static_cast<unsigned char>(s[i]);
        int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        char32_t c = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
        bool ok = len > 0 && i + len <= s.size();
        for (int k = 1; ok && k < len; ++k) {
            const auto cb = static_cast<unsigned char>(s[i + k]);
            if ((cb & 0xC0) != 0x80) ok = false;
            c = (c << 6) | (cb & 0x3F);
        }
        if (!ok) {
            out.push_back(0xDC00 + b);
            ++i;
            continue;
        }
        out.push_back(c);
        i += len;
    }
    return out;
}

void append_utf8(std::string &out, char32_t c) {
    if (c >= 0xDC80 && c <= 0xDCFF) {  // a byte that was not UTF-8 goes back as it came
        out.push_back(static_cast<char>(c - 0xDC00));
    } else if (c < 0x80) {
        out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (c >> 6)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (c >> 12)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (c >> 18)));
        out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
}

std::string encode_utf8(const std::vector<char32_t> &cps, size_t begin, size_t end) {
    std::string out;
    for (size_t i = begin; i < end && i < cps.size(); ++i) append_utf8(out, cps[i]);
    return out;
}

size_t count_code_points(std::string_view s) { return decode_utf8(s).size(); }

bool is_py_space(char32_t c) {
    switch (c) {
    case ' ': case '\t': case '\n': case '\v': case '\f': case '\r':
    case 0x1C: case 0x1D: case 0x1E: case 0x1F: case 0x85: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return c >= 0x2000 && c <= 0x200A;
    }
}

std::string py_strip(std::string_view s, bool left, bool right, const std::string *chars) {
    const std::vector<char32_t> cps = decode_utf8(s);
    std::vector<char32_t> set;
    if (chars) set = decode_utf8(*chars);
    auto strip_it = [&](char32_t c) {
        if (!chars) return is_py_space(c);
        for (char32_t x : set)
            if (x == c) return true;
        return false;
    };
    size_t b = 0, e = cps.size();
    if (left)
        while (b < e && strip_it(cps[b])) ++b;
    if (right)
        while (e > b && strip_it(cps[e - 1])) --e;
    return encode_utf8(cps, b, e);
}

std::vector<std::string> py_split(std::string_view s, const std::string *sep, int64_t maxsplit, bool from_right) {
    std::vector<std::string> parts;
    if (sep) {
        if (sep->empty()) throw Failure("split(): empty separator");
        if (!from_right) {
            size_t start = 0;
            while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
                const size_t at = s.find(*sep, start);
                if (at == std::string_view::npos) break;
                parts.emplace_back(s.substr(start, at - start));
                start = at + sep->size();
            }
            parts.emplace_back(s.substr(start));
        } else {
            size_t end = s.size();
            std::vector<std::string> rev;
            while (maxsplit < 0 || static_cast<int64_t>(rev.size()) < maxsplit) {
                if (end < sep->size()) break;
                const size_t at = s.rfind(*sep, end - sep->size());
                if (at == std::string_view::npos) break;
                rev.emplace_back(s.substr(at + sep->size(), end - at - sep->size()));
                end = at;
            }
            rev.emplace_back(s.substr(0, end));
            parts.assign(rev.rbegin(), rev.rend());
        }
        return parts;
    }
    // No separator: runs of whitespace split, and leading/trailing whitespace is ignored.
    const std::vector<char32_t> cps = decode_utf8(s);
    if (!from_right) {
        size_t i = 0;
        while (i < cps.size()) {
            while (i < cps.size() && is_py_space(cps[i])) ++i;
            if (i == cps.size()) break;
            if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
                size_t e = cps.size();
                while (e > i && is_py_space(cps[e - 1])) --e;
                parts.push_back(encode_utf8(cps, i, e));
                break;
            }
            size_t j = i;
            while (j < cps.size() && !is_py_space(cps[j])) ++j;
            parts.push_back(encode_utf8(cps, i, j));
            i = j;
        }
    } else {
        size_t e = cps.size();
        std::vector<std::string> rev;
        while (e > 0) {
            while (e > 0 && is_py_space(cps[e - 1])) --e;
            if (e == 0) break;
            if (maxsplit >= 0 && static_cast<int64_t>(rev.size()) == maxsplit) {
                size_t b = 0;
                while (b < e && is_py_space(cps[b])) ++b;
                rev.push_back(encode_utf8(cps, b, e));
                break;
            }
            size_t b = e;
            while (b > 0 && !is_py_space(cps[b - 1])) --b;
            rev.push_back(encode_utf8(cps, b, e));
            e = b;
        }
        parts.assign(rev.rbegin(), rev.rend());
    }
    return parts;
}

std::string py_replace(std::string_view s, std::string_view from, std::string_view to, int64_t count) {
    std::string out;
    if (from.empty()) {
        // Python inserts `to` between every code point and at both ends.
        const std::vector<char32_t> cps = decode_utf8(s);
        int64_t done = 0;
        for (size_t i = 0; i <= cps.size(); ++i) {
            if (count < 0 || done < count) {
                out += to;
                ++done;
            }
            if (i < cps.size()) append_utf8(out, cps[i]);
        }
        return out;
    }
    size_t start = 0;
    int64_t done = 0;
    while (count < 0 || done < count) {
        const size_t at = s.find(from, start);
        if (at == std::string_view::npos) break;
        out.append(s.substr(start, at - start));
        out.append(to);
        start = at + from.size();
        ++done;
    }
    out.append(s.substr(start));
    return out;
}

namespace {
template <typename Map>
std::string map_code_points(std::string_view s, Map map) {
    std::string out;
    for (char32_t c : decode_utf8(s)) append_utf8(out, map(c));
    return out;
}
char32_t upper1(char32_t c) { return c >= 0xDC80 && c <= 0xDCFF ? c : static_cast<char32_t>(u_toupper(static_cast<UChar32>(c))); }
char32_t lower1(char32_t c) { return c >= 0xDC80 && c <= 0xDCFF ? c : static_cast<char32_t>(u_tolower(static_cast<UChar32>(c))); }
}  // namespace

std::string py_upper(std::string_view s) { return map_code_points(s, upper1); }
std::string py_lower(std::string_view s) { return map_code_points(s, lower1); }

std::string py_title(std::string_view s) {
    std::string out;
    bool prev_cased = false;
    for (char32_t c : decode_utf8(s)) {
        const bool cased = u_isalpha(static_cast<UChar32>(c));
        append_utf8(out, cased ? (prev_cased ? lower1(c) : upper1(c)) : c);
        prev_cased = cased;
    }
    return out;
}

std::string py_capitalize(std::string_view s) {
    std::string out;
    bool first = true;
    for (char32_t c : decode_utf8(s)) {
        append_utf8(out, first ? upper1(c) : lower1(c));
        first = false;
    }
    return out;
}

std::string normalize_newlines(std::string_view source) {
    std::string out;
    out.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
        if (source[i] == '\r') {
            if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
            out.push_back('\n');
        } else {
            out.push_back(source[i]);
        }
    }
    // "\n".join(lines) after dropping one empty last line: one trailing newline goes.
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

}  // namespace mst::jinja
