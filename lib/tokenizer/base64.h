// Standard base64 (RFC 4648, '+' '/' alphabet, '=' padding) as tiktoken rank files use it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mst::base64 {

// The decoded bytes, or nullopt with *why set (what is wrong and at which character) when
// text is not canonical padded base64: a character outside the alphabet, a length that is
// not a multiple of 4, misplaced padding, or non-zero bits left over in the last group.
std::optional<std::string> decode(std::string_view text, std::string *why);

}  // namespace mst::base64
