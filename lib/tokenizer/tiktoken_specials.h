// The parts of a tiktoken checkpoint that are not in its rank file, as Moonshot's Kimi
// (K2, K2.5) ships them: the split pattern of its tokenization_kimi.py, and special tokens
// at the 256 ids after the ranks, named by tokenizer_config.json's "added_tokens_decoder"
// or else "<|reserved_token_{id}|>".
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/added_tokens.h"

namespace mst {

// tokenization_kimi.py's pat_str, verbatim: the "|"-join of its eight alternatives. Its
// class intersections ([...&&[^\p{Han}]]) are translated by onig_to_pcre2.
extern const std::string_view kKimiSplitPattern;

inline constexpr int32_t kKimiReservedSpecialTokens = 256;

// The special tokens of a Kimi-style checkpoint with n_ranks ranks: every id in
// [n_ranks, n_ranks + 256), plus any other id added_tokens_decoder names. Fails with
// MST_ERR_BAD_FORMAT naming config_origin for a malformed entry and for any clash (see
// check_special_tokens).
std::vector<AddedToken> kimi_special_tokens(const nlohmann::json &config, int32_t n_ranks,
                                            const std::string &config_origin);

// Fails with MST_ERR_BAD_FORMAT naming origin when a special token's id is a rank (below
// n_ranks), two tokens share an id, or two ids share a content.
void check_special_tokens(const std::vector<AddedToken> &tokens, int32_t n_ranks, const std::string &origin);

}  // namespace mst
