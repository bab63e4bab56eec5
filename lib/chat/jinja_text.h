// Text helpers with Python's semantics over UTF-8: lengths and indices count code
// points and whitespace is what str.isspace() accepts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mst::jinja {

// A failure while rendering; the evaluator adds the template line to it.
struct Failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Decode UTF-8 into code points; an invalid byte stands for itself (U+DC80+byte, as
// Python's surrogateescape would) so that no input is rejected or lost.
std::vector<char32_t> decode_utf8(std::string_view s);
void append_utf8(std::string &out, char32_t c);
std::string encode_utf8(const std::vector<char32_t> &cps, size_t begin, size_t end);
size_t count_code_points(std::string_view s);

bool is_py_space(char32_t c);
std::string py_strip(std::string_view s, bool left, bool right, const std::string *chars);
std::vector<std::string> py_split(std::string_view s, const std::string *sep, int64_t maxsplit, bool from_right);
std::string py_replace(std::string_view s, std::string_view from, std::string_view to, int64_t count);
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_title(std::string_view s);
std::string py_capitalize(std::string_view s);

// jinja2's lexer: "\r\n" and "\r" become "\n" (other Unicode line breaks stay), and one
// trailing newline is dropped (keep_trailing_newline=False, as transformers leaves it).
std::string normalize_newlines(std::string_view source);

}  // namespace mst::jinja
