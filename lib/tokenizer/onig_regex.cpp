#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/onig_regex.h"

#include <pcre2.h>

#include <cctype>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace mst {

namespace {

constexpr std::string_view kWordClass = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}";
constexpr std::string_view kHexClass = "0-9A-Fa-f";

std::string pcre2_message(int code) {
    PCRE2_UCHAR buffer[256];
    if (pcre2_get_error_message(code, buffer, sizeof buffer) < 0) return fmt::format("PCRE2 error {}", code);
    return reinterpret_cast<const char *>(buffer);
}

// Escapes every ASCII punctuation character so that text is matched literally.
std::string quote_literal(std::string_view text) {
    std::string out;
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x80 && !std::isalnum(u)) out.push_back('\\');
        out.push_back(c);
    }
    return out;
}

// Per-thread match state: a JIT stack may only be used by one thread at a time, and
// reusing the match data avoids an allocation per call.
struct MatchState {
    pcre2_match_data *data = nullptr;
    pcre2_match_context *context = nullptr;
    pcre2_jit_stack *jit_stack = nullptr;

    MatchState() {
        data = pcre2_match_data_create(1, nullptr);
        context = pcre2_match_context_create(nullptr);
        jit_stack = pcre2_jit_stack_create(64 * 1024, 16 * 1024 * 1024, nullptr);
        if (context && jit_stack) pcre2_jit_stack_assign(context, nullptr, jit_stack);
    }
    ~MatchState() {
        pcre2_jit_stack_free(jit_stack);
        pcre2_match_context_free(context);
        pcre2_match_data_free(data);
    }
    MatchState(const MatchState &) = delete;
    MatchState &operator=(const MatchState &) = delete;
};

MatchState &match_state() {
    thread_local MatchState state;
    if (!state.data || !state.context) fail(MST_ERR_OUT_OF_MEMORY, "cannot allocate PCRE2 match data");
    return state;
}

// Classes nested deeper than this are refused (as unterminated), so that a hostile
// pattern cannot recurse the stack away; real patterns nest one or two levels.
constexpr int kMaxClassDepth = 16;

// The index of the ']' that closes the class opened at pattern[open], or npos. Escapes,
// POSIX classes ([:alpha:]) and nested classes are skipped whole; a ']' right after '['
// or '[^' is a member, not the end.
size_t class_end(std::string_view pattern, size_t open, int depth = 0) {
    if (depth > kMaxClassDepth) return std::string_view::npos;
    size_t i = open + 1;
    if (i < pattern.size() && pattern[i] == '^') ++i;
    if (i < pattern.size() && pattern[i] == ']') ++i;
    while (i < pattern.size()) {
        const char c = pattern[i];
        if (c == '\\') {
            i += 2;
            continue;
        }
        if (c == ']') return i;
        if (c == '[') {
            if (i + 1 < pattern.size() && pattern[i + 1] == ':') {
                const size_t close = pattern.find(":]", i + 2);
                if (close == std::string_view::npos) return std::string_view::npos;
                i = close + 2;
                continue;
            }
            const size_t inner = class_end(pattern, i, depth + 1);
            if (inner == std::string_view::npos) return inner;
            i = inner + 1;
            continue;
        }
        ++i;
    }
    return std::string_view::npos;
}

// Splits the members of a class (the text between its brackets) at its top-level "&&";
// returns one part when there is none.
std::vector<std::string_view> intersection_operands(std::string_view members) {
    std::vector<std::string_view> parts;
    size_t start = 0;
    size_t i = 0;
    while (i < members.size()) {
        const char c = members[i];
        if (c == '\\') {
            i += 2;
            continue;
        }
        if (c == '[') {
            const size_t inner = class_end(members, i);
            i = inner == std::string_view::npos ? members.size() : inner + 1;
            continue;
        }
        if (c == '&' && i + 1 < members.size() && members[i + 1] == '&') {
            parts.push_back(members.substr(start, i - start));
            i += 2;
            start = i;
            continue;
        }
        ++i;
    }
    parts.push_back(members.substr(start));
    return parts;
}

// A class with an intersection, [A&&B&&C] (Oniguruma and the Rust regex crate; PCRE2 has
// none), matches one character that is in every operand. PCRE2 can say the same with
// lookaheads that test the character before a class consumes it: (?:(?=B)(?=C)A).
// A negated one, [^A&&B], is one character that is not in the intersection.
std::string translate_intersection(std::string_view pattern, size_t open, size_t close, const std::string &origin,
                                   const std::string &whole) {
    const bool negate = pattern[open + 1] == '^';
    const std::string_view members = pattern.substr(open + (negate ? 2 : 1), close - open - (negate ? 2 : 1));
    const std::vector<std::string_view> operands = intersection_operands(members);
    std::vector<std::string> classes;
    for (std::string_view operand : operands) {
        if (operand.empty())
            fail(MST_ERR_UNSUPPORTED, "{}: regex /{}/ has an empty operand of a character class intersection", origin,
                 whole);
        // An operand that is one nested class stands for itself; loose members form a class.
        const bool nested = operand.front() == '[' && class_end(operand, 0) == operand.size() - 1;
        std::string as_class;
        if (!nested) as_class.push_back('[');
        as_class.append(operand);
        if (!nested) as_class.push_back(']');
        classes.push_back(onig_to_pcre2(as_class, origin));
    }
    std::string intersection = "(?:";
    for (size_t k = 1; k < classes.size(); ++k) {
        intersection += "(?=";
        intersection += classes[k];
        intersection += ')';
    }
    intersection += classes[0];
    intersection += ')';
    if (!negate) return intersection;
    std::string complement = "(?:(?!";
    complement += intersection;
    complement += ")(?s:.))";
    return complement;
}

}  // namespace

std::string onig_to_pcre2(std::string_view pattern, const std::string &origin) {
    std::string out;
    out.reserve(pattern.size() + 32);
    bool in_class = false;
    size_t i = 0;
    const auto unsupported = [&](std::string_view what) {
        fail(MST_ERR_UNSUPPORTED, "{}: regex /{}/ uses {}, which is not supported", origin, pattern, what);
    };
    // Inside a class the members are spliced in; outside, they become a class of their own.
    const auto append_class = [&](std::string_view members, bool negate) {
        if (!in_class) out += negate ? "[^" : "[";
        out += members;
        if (!in_class) out += ']';
    };
    while (i < pattern.size()) {
        const char c = pattern[i];
        if (c == '\\') {
            if (i + 1 >= pattern.size()) {
                out.push_back(c);
                ++i;
                continue;
            }
            const char e = pattern[i + 1];
            switch (e) {
            case 's':
                out += "\\p{White_Space}";
                break;
            case 'S':
                out += "\\P{White_Space}";
                break;
            case 'w':
                append_class(kWordClass, false);
                break;
            case 'W':
                if (in_class) unsupported("\\W inside a character class");
                append_class(kWordClass, true);
                break;
            case 'h':
                append_class(kHexClass, false);
                break;
            case 'H':
                if (in_class) unsupported("\\H inside a character class");
                append_class(kHexClass, true);
                break;
            default: {
                // Copy the escape and the whole (possibly multi-byte) character it escapes.
                const size_t length = utf8::decode_at(pattern, i + 1).length;
                out.append(pattern.substr(i, 1 + length));
                i += 1 + length;
                continue;
            }
            }
            i += 2;
            continue;
        }
        if (in_class) {
            if (c == ']') {
                in_class = false;
            } else if (c == '[') {
                if (i + 1 < pattern.size() && pattern[i + 1] == ':') {
                    const size_t close = pattern.find(":]", i + 2);
                    if (close == std::string_view::npos) unsupported("an unterminated POSIX class");
                    out.append(pattern.substr(i, close + 2 - i));
                    i = close + 2;
                    continue;
                }
                unsupported("a nested character class");
            } else if (c == '&' && i + 1 < pattern.size() && pattern[i + 1] == '&') {
                unsupported("a character class intersection");
            }
            out.push_back(c);
            ++i;
            continue;
        }
        if (c == '[') {
            const size_t close = class_end(pattern, i);
            if (close != std::string_view::npos &&
                intersection_operands(pattern.substr(i + 1, close - i - 1)).size() > 1) {
                out += translate_intersection(pattern, i, close, origin, std::string(pattern));
                i = close + 1;
                continue;
            }
            in_class = true;
            out.push_back(c);
            ++i;
            // A ']' right after '[' or '[^' is a literal member in both engines.
            if (i < pattern.size() && pattern[i] == '^') out.push_back(pattern[i++]);
            if (i < pattern.size() && pattern[i] == ']') out.push_back(pattern[i++]);
            continue;
        }
        if (c == '(' && i + 2 < pattern.size() && pattern[i + 1] == '?') {
            size_t j = i + 2;
            while (j < pattern.size() && (std::isalpha(static_cast<unsigned char>(pattern[j])) || pattern[j] == '-'))
                ++j;
            if (j > i + 2 && j < pattern.size() && (pattern[j] == ':' || pattern[j] == ')')) {
                out += "(?";
                for (size_t k = i + 2; k < j; ++k) {
                    const char flag = pattern[k];
                    if (flag == 'i' || flag == 'x' || flag == '-') out.push_back(flag);
                    else if (flag == 'm') out.push_back('s');
                    else unsupported(fmt::format("the inline flag '{}'", flag));
                }
                i = j;
                continue;
            }
        }
        out.push_back(c);
        ++i;
    }
    return out;
}

OnigRegex::OnigRegex(std::string_view pattern, bool literal, const std::string &origin) : source_(pattern) {
    if (!utf8::is_valid(pattern)) fail(MST_ERR_BAD_FORMAT, "{}: a split pattern is not valid UTF-8", origin);
    const std::string translated = literal ? quote_literal(pattern) : onig_to_pcre2(pattern, origin);
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code *code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                     PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
    if (!code)
        fail(MST_ERR_BAD_FORMAT, "{}: regex /{}/ does not compile at offset {}: {}", origin, pattern, offset,
             pcre2_message(error));
    // JIT is only a speed-up: without it (unsupported CPU, no memory) the interpreter runs.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    code_ = code;
}

OnigRegex::~OnigRegex() { pcre2_code_free(static_cast<pcre2_code *>(code_)); }

void OnigRegex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>> &out) const {
    auto *code = static_cast<pcre2_code *>(code_);
    MatchState &state = match_state();
    const auto *subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t search_from = 0;
    bool matched_before = false;
    size_t last_match_end = 0;
    while (search_from <= text.size()) {
        const int rc = pcre2_match(code, subject, text.size(), search_from, PCRE2_NO_UTF_CHECK, state.data,
                                   state.context);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0)
            fail(MST_ERR_INTERNAL, "regex /{}/ failed on a text of {} bytes: {}", source_, text.size(),
                 pcre2_message(rc));
        const PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(state.data);
        const size_t begin = ovector[0], end = ovector[1];
        // Oniguruma's iterator drops an empty match that touches the previous match and
        // searches again one character further on.
        if (begin == end && matched_before && end == last_match_end) {
            search_from += search_from < text.size() ? utf8::length_at(text, search_from) : 1;
            continue;
        }
        out.emplace_back(begin, end);
        search_from = end;
        last_match_end = end;
        matched_before = true;
    }
}

}  // namespace mst
