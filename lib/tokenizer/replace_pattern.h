// The "pattern" of a tokenizer.json Replace normalizer or decoder: {"String": s} (found
// literally) or {"Regex": r} (Oniguruma syntax, run as the pre-tokenizer's regexes are).
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "tokenizer/onig_regex.h"

namespace mst {

// spec is the Replace object; where names it in errors (MST_ERR_BAD_FORMAT).
std::unique_ptr<OnigRegex> replace_pattern(const nlohmann::json &spec, const std::string &origin,
                                           const std::string &where);

}  // namespace mst
