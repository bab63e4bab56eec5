#include "chat/jinja_lexer.h"

#include <cctype>

#include "chat/jinja_text.h"
#include "core/error.h"

namespace mst::jinja {
namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

class Lexer {
public:
    Lexer(std::string_view src, const LexOptions &options) : src_(src), options_(options) {}

    std::vector<Token> run() {
        size_t text_start = 0;
        while (true) {
            const size_t tag = find_tag(pos_);
            std::string text(src_.substr(text_start, (tag == npos ? src_.size() : tag) - text_start));
            if (tag == npos) {
                push_text(std::move(text), line_of(text_start));
                break;
            }
            const char kind = src_[tag + 1];
            const char modifier = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
            if (modifier == '-') {
                while (!text.empty() && is_ws(text.back())) text.pop_back();
            } else if (options_.lstrip_blocks && kind != '{' && modifier != '+') {
                // Whitespace alone between the line start and a block or comment tag goes.
                const size_t nl = text.rfind('\n');
                const size_t from = nl == std::string::npos ? 0 : nl + 1;
                const bool line_start = nl != std::string::npos || text_start == 0 || src_[text_start - 1] == '\n';
                bool only_ws = true;
                for (size_t i = from; i < text.size(); ++i)
                    if (text[i] != ' ' && text[i] != '\t' && !is_ws(text[i])) only_ws = false;
                if (line_start && only_ws) text.resize(from);
            }
            push_text(std::move(text), line_of(text_start));
            pos_ = tag + 2 + (modifier == '-' || modifier == '+' ? 1 : 0);
            const int tag_line = line_of(tag);
            if (kind == '#') {
                lex_comment(tag_line);
            } else if (kind == '%' && lex_raw(tag_line)) {
                // {% raw %}...{% endraw %}: the text between is output as written.
            } else {
                tokens_.push_back({kind == '{' ? Tok::VarBegin : Tok::BlockBegin, "", tag_line});
                lex_tag(kind == '{', tag_line);
            }
            text_start = pos_;
        }
        tokens_.push_back({Tok::Eof, "", line_of(src_.size())});
        return std::move(tokens_);
    }

private:
    static constexpr size_t npos = std::string_view::npos;

    size_t find_tag(size_t from) const {
        for (size_t i = from; i + 1 < src_.size(); ++i)
            if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
        return npos;
    }

    int line_of(size_t at) {
        // Lines are counted incrementally: positions only move forward.
        while (line_pos_ < at && line_pos_ < src_.size()) {
            if (src_[line_pos_] == '\n') ++line_;
            ++line_pos_;
        }
        return line_;
    }

    void push_text(std::string text, int line) {
        if (!text.empty()) tokens_.push_back({Tok::Text, std::move(text), line});
    }

    // After a tag: "-" strips all following whitespace, trim_blocks one newline.
    void after_end(bool minus, bool plus, bool is_block) {
        if (minus) {
            while (pos_ < src_.size() && is_ws(src_[pos_])) ++pos_;
        } else if (is_block && !plus && options_.trim_blocks && pos_ < src_.size() && src_[pos_] == '\n') {
            ++pos_;
        }
    }

    // At pos_ just after "{%" (and its modifier): if the tag is "raw", emit everything up
    // to "{% endraw %}" as text and return true.
    bool lex_raw(int line) {
        size_t p = pos_;
        while (p < src_.size() && is_ws(src_[p])) ++p;
        if (src_.compare(p, 3, "raw") != 0) return false;
        p += 3;
        while (p < src_.size() && is_ws(src_[p])) ++p;
        const bool minus_open = src_.compare(p, 3, "-%}") == 0;
        if (!minus_open && src_.compare(p, 2, "%}") != 0) return false;
        p += minus_open ? 3 : 2;
        if (minus_open)
            while (p < src_.size() && is_ws(src_[p])) ++p;
        // Find "{%[-+]? endraw [-+]?%}".
        for (size_t at = src_.find("{%", p); at != npos; at = src_.find("{%", at + 2)) {
            size_t q = at + 2;
            const char mod = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q] : '\0';
            if (mod) ++q;
            while (q < src_.size() && is_ws(src_[q])) ++q;
            if (src_.compare(q, 6, "endraw") != 0) continue;
            q += 6;
            while (q < src_.size() && is_ws(src_[q])) ++q;
            const char end_mod = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q] : '\0';
            if (end_mod) ++q;
            if (src_.compare(q, 2, "%}") != 0) continue;
            std::string text(src_.substr(p, at - p));
            if (mod == '-')
                while (!text.empty() && is_ws(text.back())) text.pop_back();
            push_text(std::move(text), line);
            pos_ = q + 2;
            after_end(end_mod == '-', end_mod == '+', true);
            return true;
        }
        fail(MST_ERR_BAD_FORMAT, "chat template line {}: 'raw' is never closed with '{{% endraw %}}'", line);
    }

    void lex_comment(int line) {
        const size_t end = src_.find("#}", pos_);
        if (end == npos) fail(MST_ERR_BAD_FORMAT, "chat template line {}: the comment opened here is never closed with '#}}'", line);
        const bool minus = end > pos_ && src_[end - 1] == '-';
        const bool plus = end > pos_ && src_[end - 1] == '+';
        pos_ = end + 2;
        after_end(minus, plus, true);
    }

    void lex_tag(bool is_var, int tag_line) {
        int depth = 0;  // open brackets: "}}" inside {'a': {'b': 1}} does not end the tag
        while (true) {
            while (pos_ < src_.size() && is_ws(src_[pos_])) ++pos_;
            if (pos_ >= src_.size())
                fail(MST_ERR_BAD_FORMAT, "chat template line {}: the {} opened here is never closed with '{}'", tag_line,
                     is_var ? "expression" : "block tag", is_var ? "}}" : "%}");
            const int line = line_of(pos_);
            const std::string_view rest = src_.substr(pos_);
            if (depth == 0) {
                const char *end = is_var ? "}}" : "%}";
                for (const char mod : {'-', '+', '\0'}) {
                    std::string want;
                    if (mod) want.push_back(mod);
                    want += end;
                    if (mod == '+' && is_var) continue;
                    if (rest.substr(0, want.size()) == want) {
                        pos_ += want.size();
                        tokens_.push_back({is_var ? Tok::VarEnd : Tok::BlockEnd, "", line});
                        after_end(mod == '-', mod == '+', !is_var);
                        return;
                    }
                }
                if (rest.substr(0, 2) == (is_var ? "%}" : "}}"))
                    fail(MST_ERR_BAD_FORMAT, "chat template line {}: unexpected '{}' in a {} opened with '{}'", line,
                         rest.substr(0, 2), is_var ? "expression" : "block tag", is_var ? "{{" : "{%");
            }
            const char c = rest[0];
            if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
                size_t n = 1;
                while (n < rest.size() && (std::isalnum(static_cast<unsigned char>(rest[n])) || rest[n] == '_')) ++n;
                tokens_.push_back({Tok::Name, std::string(rest.substr(0, n)), line});
                pos_ += n;
            } else if (std::isdigit(static_cast<unsigned char>(c))) {
                lex_number(line);
            } else if (c == '"' || c == '\'') {
                lex_string(line);
            } else {
                static const char *const two[] = {"**", "//", "==", "!=", "<=", ">="};
                std::string op;
                for (const char *t : two)
                    if (rest.substr(0, 2) == t) op = t;
                if (op.empty()) {
                    if (std::string_view("+-*/%~<>=()[]{}.,:|!").find(c) == npos || c == '!')
                        fail(MST_ERR_BAD_FORMAT, "chat template line {}: unexpected character '{}'", line, c);
                    op = std::string(1, c);
                }
                if (op == "(" || op == "[" || op == "{") ++depth;
                if ((op == ")" || op == "]" || op == "}") && depth > 0) --depth;
                tokens_.push_back({Tok::Op, op, line});
                pos_ += op.size();
            }
        }
    }

    void lex_number(int line) {
        size_t n = 0;
        std::string digits;
        auto take_digits = [&] {
            while (pos_ + n < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_ + n])) || src_[pos_ + n] == '_')) {
                if (src_[pos_ + n] != '_') digits.push_back(src_[pos_ + n]);
                ++n;
            }
        };
        take_digits();
        bool is_float = false;
        if (pos_ + n + 1 < src_.size() && src_[pos_ + n] == '.' && std::isdigit(static_cast<unsigned char>(src_[pos_ + n + 1]))) {
            is_float = true;
            digits.push_back('.');
            ++n;
            take_digits();
        }
        if (pos_ + n < src_.size() && (src_[pos_ + n] == 'e' || src_[pos_ + n] == 'E')) {
            size_t m = n + 1;
            if (pos_ + m < src_.size() && (src_[pos_ + m] == '+' || src_[pos_ + m] == '-')) ++m;
            if (pos_ + m < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_ + m]))) {
                is_float = true;
                digits += std::string(src_.substr(pos_ + n, m - n));
                n = m;
                take_digits();
            }
        }
        tokens_.push_back({is_float ? Tok::Float : Tok::Int, digits, line});
        pos_ += n;
    }

    // Python string escapes, as jinja2 decodes literals with "unicode-escape"; an
    // unknown escape such as "\d" keeps its backslash.
    void lex_string(int line) {
        const char quote = src_[pos_];
        size_t i = pos_ + 1;
        std::string out;
        while (true) {
            if (i >= src_.size()) fail(MST_ERR_BAD_FORMAT, "chat template line {}: unterminated string literal", line);
            const char c = src_[i];
            if (c == quote) break;
            if (c != '\\') {
                out.push_back(c);
                ++i;
                continue;
            }
            if (i + 1 >= src_.size()) fail(MST_ERR_BAD_FORMAT, "chat template line {}: unterminated string literal", line);
            const char e = src_[i + 1];
            i += 2;
            switch (e) {
            case 'n': out.push_back('\n'); break;
            case 't': out.push_back('\t'); break;
            case 'r': out.push_back('\r'); break;
            case 'b': out.push_back('\b'); break;
            case 'f': out.push_back('\f'); break;
            case 'v': out.push_back('\v'); break;
            case 'a': out.push_back('\a'); break;
            case '\\': out.push_back('\\'); break;
            case '\'': out.push_back('\''); break;
            case '"': out.push_back('"'); break;
            case '\n': break;  // a backslash before a newline joins the lines
            case 'x': case 'u': case 'U': {
                const size_t len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                if (i + len > src_.size()) fail(MST_ERR_BAD_FORMAT, "chat template line {}: truncated \\{} escape", line, e);
                uint32_t v = 0;
                for (size_t k = 0; k < len; ++k) {
                    const char h = src_[i + k];
                    if (!std::isxdigit(static_cast<unsigned char>(h)))
                        fail(MST_ERR_BAD_FORMAT, "chat template line {}: bad \\{} escape in a string literal", line, e);
                    v = v * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : std::tolower(h) - 'a' + 10);
                }
                if (v > 0x10FFFF) fail(MST_ERR_BAD_FORMAT, "chat template line {}: \\{} escape beyond U+10FFFF", line, e);
                append_utf8(out, v);
                i += len;
                break;
            }
            default:
                if (e >= '0' && e <= '7') {
                    uint32_t v = static_cast<uint32_t>(e - '0');
                    for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k, ++i)
                        v = v * 8 + static_cast<uint32_t>(src_[i] - '0');
                    append_utf8(out, v);
                } else {
                    out.push_back('\\');
                    out.push_back(e);
                }
            }
        }
        tokens_.push_back({Tok::String, std::move(out), line});
        pos_ = i + 1;
    }

    std::string_view src_;
    LexOptions options_;
    size_t pos_ = 0;
    size_t line_pos_ = 0;
    int line_ = 1;
    std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> lex(std::string_view source, const LexOptions &options) { return Lexer(source, options).run(); }

}  // namespace mst::jinja
