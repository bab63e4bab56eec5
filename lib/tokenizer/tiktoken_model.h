// tiktoken's byte-pair encoding: a word's bytes start as single bytes, and the adjacent pair
// whose concatenation has the lowest rank merges first (the leftmost of equal ranks), until
// no concatenation is a token. There is no merge list: the ranks are the merges. A word that
// is itself a token is that token at once, as tiktoken encodes it.
//
// Tokens are written in the GPT-2 byte-level alphabet (as Hugging Face converts these
// files), so id_of / for_each_token use that spelling, while tokenize takes raw bytes.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/token_model.h"

namespace mst {

class TiktokenModel final : public TokenModel {
public:
    // by_rank[r] holds the bytes of the token of rank (id) r; each must be distinct and
    // non-empty, and every single byte must be a token (MST_ERR_BAD_FORMAT naming origin
    // otherwise), since a word is split down to its bytes first.
    TiktokenModel(std::vector<std::string> by_rank, const std::string &origin);

    void tokenize(std::string_view word, std::vector<int32_t> &ids) const override;
    std::optional<int32_t> id_of(std::string_view token) const override;
    void for_each_token(const std::function<void(const std::string &, int32_t)> &visit) const override;

    int32_t size() const { return static_cast<int32_t>(by_rank_.size()); }

private:
    std::optional<int32_t> rank_of(std::string_view bytes) const;

    struct StringHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    std::vector<std::string> by_rank_;
    std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> ranks_;
};

}  // namespace mst
