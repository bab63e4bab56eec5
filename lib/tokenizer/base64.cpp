#include "tokenizer/base64.h"

#include <fmt/format.h>

#include <cstdint>

namespace mst::base64 {

namespace {

int value_of(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

std::string describe(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x21 && u < 0x7F) return fmt::format("'{}'", c);
    return fmt::format("byte 0x{:02X}", u);
}

}  // namespace

std::optional<std::string> decode(std::string_view text, std::string *why) {
    const auto reject = [&](std::string message) -> std::optional<std::string> {
        if (why) *why = std::move(message);
        return std::nullopt;
    };
    if (text.empty()) return reject("it is empty");
    if (text.size() % 4 != 0) return reject(fmt::format("its length {} is not a multiple of 4", text.size()));
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (size_t group = 0; group < text.size(); group += 4) {
        const bool last = group + 4 == text.size();
        uint32_t bits = 0;
        int padding = 0;
        for (size_t k = 0; k < 4; ++k) {
            const char c = text[group + k];
            if (c == '=') {
                // Padding may only fill the last one or two places of the last group.
                if (!last || k < 2) return reject(fmt::format("'=' at character {} is not trailing padding", group + k));
                ++padding;
                bits <<= 6;
                continue;
            }
            if (padding > 0) return reject(fmt::format("{} at character {} follows padding", describe(c), group + k));
            const int v = value_of(c);
            if (v < 0) return reject(fmt::format("{} at character {} is not a base64 character", describe(c), group + k));
            bits = (bits << 6) | static_cast<uint32_t>(v);
        }
        // A canonical encoder leaves the bits beyond the last byte zero; other bits there
        // mean the text was damaged (or is not base64 at all).
        const uint32_t spare_mask = padding == 2 ? 0xFFFFu : padding == 1 ? 0xFFu : 0u;
        if ((bits & spare_mask) != 0) return reject(fmt::format("the group at character {} has non-zero padding bits", group));
        out.push_back(static_cast<char>((bits >> 16) & 0xFF));
        if (padding < 2) out.push_back(static_cast<char>((bits >> 8) & 0xFF));
        if (padding < 1) out.push_back(static_cast<char>(bits & 0xFF));
    }
    return out;
}

}  // namespace mst::base64
