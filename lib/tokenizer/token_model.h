// What the tokenizer asks of its model, whichever file it came from: tokenizer.json's BPE
// (BpeModel) or a tiktoken rank file (TiktokenModel).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mst {

class TokenModel {
public:
    virtual ~TokenModel() = default;

    // Appends the ids of one pre-tokenized word.
    virtual void tokenize(std::string_view word, std::vector<int32_t> &ids) const = 0;

    // The id of a token written as the vocabulary writes it.
    virtual std::optional<int32_t> id_of(std::string_view token) const = 0;

    // Every (token as the vocabulary writes it, id).
    virtual void for_each_token(const std::function<void(const std::string &, int32_t)> &visit) const = 0;
};

}  // namespace mst
