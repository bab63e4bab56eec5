// Splits a template into text and tag tokens, applying jinja2's whitespace control as
// transformers configures it (trim_blocks and lstrip_blocks on, "-" and "+" modifiers),
// and the expressions inside tags into names, literals and operators.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mst::jinja {

enum class Tok { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
    Tok type;
    std::string text;  // Text/Name/Op text, the decoded String, or the digits
    int line = 1;
};

struct LexOptions {
    bool trim_blocks = true;
    bool lstrip_blocks = true;
};

// Throws mst::Error (MST_ERR_BAD_FORMAT) naming the line of an unterminated tag,
// comment or string, or of a character that cannot start a token.
std::vector<Token> lex(std::string_view source, const LexOptions &options);

}  // namespace mst::jinja
