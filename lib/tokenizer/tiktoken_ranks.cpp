#include "tokenizer/tiktoken_ranks.h"

#include <charconv>
#include <cstdint>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/base64.h"

namespace mst {

namespace {

// Ids index tables, so a damaged rank far beyond the file's size must not allocate; the
// same bound as for tokenizer.json ids.
constexpr uint64_t kMaxRank = uint64_t{1} << 24;

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

}  // namespace

std::vector<std::string> parse_tiktoken_ranks(std::string_view text, const std::string &origin) {
    // by_rank[r] is the token of rank r; line_of[r] the line that gave it (0 = not yet).
    std::vector<std::string> by_rank;
    std::vector<size_t> line_of;
    std::unordered_map<std::string_view, size_t> line_of_token;
    size_t count = 0;
    size_t line_number = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        ++line_number;
        const size_t newline = text.find('\n', pos);
        const bool has_newline = newline != std::string_view::npos;
        std::string_view line = text.substr(pos, has_newline ? newline - pos : std::string_view::npos);
        pos = has_newline ? newline + 1 : text.size();
        // tiktoken splits each line on whitespace; the two fields are its token and rank.
        size_t a = 0;
        while (a < line.size() && is_blank(line[a])) ++a;
        if (a == line.size()) continue;
        size_t b = a;
        while (b < line.size() && !is_blank(line[b])) ++b;
        size_t c = b;
        while (c < line.size() && is_blank(line[c])) ++c;
        size_t d = c;
        while (d < line.size() && !is_blank(line[d])) ++d;
        size_t e = d;
        while (e < line.size() && is_blank(line[e])) ++e;
        const std::string_view token_field = line.substr(a, b - a);
        const std::string_view rank_field = line.substr(c, d - c);
        if (rank_field.empty()) {
            if (!has_newline)
                fail(MST_ERR_BAD_FORMAT, "{}: line {} (the last, without a line end) has no rank; the file looks truncated",
                     origin, line_number);
            fail(MST_ERR_BAD_FORMAT, "{}: line {} has no rank (expected \"<base64 token> <rank>\")", origin, line_number);
        }
        if (e != line.size())
            fail(MST_ERR_BAD_FORMAT, "{}: line {} has more than two fields (expected \"<base64 token> <rank>\")", origin,
                 line_number);
        std::string why;
        std::optional<std::string> bytes = base64::decode(token_field, &why);
        if (!bytes) fail(MST_ERR_BAD_FORMAT, "{}: line {}: the token is not valid base64: {}", origin, line_number, why);
        uint64_t rank = 0;
        const auto [end, ec] = std::from_chars(rank_field.data(), rank_field.data() + rank_field.size(), rank);
        if (ec != std::errc() || end != rank_field.data() + rank_field.size())
            fail(MST_ERR_BAD_FORMAT, "{}: line {}: the rank \"{}\" is not a non-negative integer", origin, line_number,
                 rank_field);
        if (rank >= kMaxRank)
            fail(MST_ERR_BAD_FORMAT, "{}: line {}: the rank {} is implausibly large (limit {})", origin, line_number, rank,
                 kMaxRank - 1);
        const auto r = static_cast<size_t>(rank);
        if (r >= by_rank.size()) {
            by_rank.resize(r + 1);
            line_of.resize(r + 1, 0);
        }
        if (line_of[r] != 0)
            fail(MST_ERR_BAD_FORMAT, "{}: rank {} appears twice, on lines {} and {}", origin, rank, line_of[r],
                 line_number);
        by_rank[r] = std::move(*bytes);
        line_of[r] = line_number;
        ++count;
    }
    if (count == 0) fail(MST_ERR_BAD_FORMAT, "{}: the rank file has no tokens", origin);
    for (size_t r = 0; r < by_rank.size(); ++r) {
        if (line_of[r] == 0)
            fail(MST_ERR_BAD_FORMAT, "{}: rank {} is missing (the {} ranks must run 0..{} without a gap)", origin, r,
                 count, count - 1);
        const auto [it, inserted] = line_of_token.emplace(by_rank[r], line_of[r]);
        if (!inserted)
            fail(MST_ERR_BAD_FORMAT, "{}: lines {} and {} give the same token two ranks", origin, it->second,
                 line_of[r]);
    }
    return by_rank;
}

}  // namespace mst
