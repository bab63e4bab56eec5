// Options of llama.cpp's tools that have no counterpart in moestream: users type them
// from habit, and an error that only says "unknown" leaves them guessing what to use.
// (Those with the same meaning are accepted as aliases by the commands themselves.)
#pragma once

#include <optional>
#include <string>

namespace mst::cli {

// What to use instead of `word` (e.g. "-ngl"), or nothing when it is no such option.
std::optional<std::string> foreign_option_hint(const std::string &word);

}  // namespace mst::cli
