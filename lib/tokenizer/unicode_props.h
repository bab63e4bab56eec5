// Unicode character classes that the reference tokenizer takes from Rust's standard library
// and regex crate; answered by ICU so that they follow the Unicode data, not a local table.
#pragma once

namespace mst::unicode {

// The White_Space property (Rust char::is_whitespace, regex \s).
bool is_white_space(char32_t c);

// The regex crate's Unicode \w: Alphabetic, marks, decimal digits, connector punctuation
// and Join_Control.
bool is_word_char(char32_t c);

}  // namespace mst::unicode
