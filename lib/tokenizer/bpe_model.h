// The tokenizer.json "model" of type BPE: a vocabulary, ranked merges, and the per-word
// merge loop of the reference (always apply the lowest-ranked adjacent pair, leftmost
// first), run with a heap over a linked list of symbols so a word costs O(n log n).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/token_model.h"

namespace mst {

class BpeModel final : public TokenModel {
public:
    // spec is the "model" value. Fails with MST_ERR_BAD_FORMAT for a malformed model and
    // MST_ERR_UNSUPPORTED for BPE options it does not implement (dropout). With
    // byte_fallback (SentencePiece-style files), a character missing from the vocabulary
    // becomes the "<0xNN>" tokens of its UTF-8 bytes, and the unk token only when one of
    // those is missing too.
    static std::unique_ptr<BpeModel> from_json(const nlohmann::json &spec, const std::string &origin);

    bool byte_fallback() const { return byte_fallback_; }

    // Appends the ids of one pre-tokenized word.
    void tokenize(std::string_view word, std::vector<int32_t> &ids) const override;

    std::optional<int32_t> id_of(std::string_view token) const override;

    // Every (token, id) of the vocabulary.
    void for_each_token(const std::function<void(const std::string &, int32_t)> &visit) const override;

private:
    struct StringHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    struct Merge {
        uint32_t rank;
        int32_t merged;
    };
    using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

    void parse_merges(const nlohmann::json &merges, const std::string &origin);
    static uint64_t pair_key(int32_t left, int32_t right) {
        return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
    }
    void initial_symbols(std::string_view word, std::vector<int32_t> &symbols) const;
    void merge_word(std::string_view word, std::vector<int32_t> &ids) const;

    std::string origin_;  // names the file in errors raised while encoding
    Vocab vocab_;
    std::unordered_map<uint64_t, Merge> merges_;
    // Id of each single-character token below U+0800 (-1 if none): the byte-level alphabet
    // lies there, so most symbol lookups skip hashing. Unused with prefix/suffix options.
    std::vector<int32_t> char_ids_;
    std::optional<int32_t> unk_id_;
    std::string missing_unk_;  // an unk_token that model.vocab lacks
    bool fuse_unk_ = false;
    bool byte_fallback_ = false;
    int32_t byte_ids_[256] = {};  // the id of "<0xNN>" for byte NN, or -1
    bool ignore_merges_ = false;
    std::string continuing_subword_prefix_;
    std::string end_of_word_suffix_;

    // Words seen before, as the reference caches them; bounded, then it stops growing.
    static constexpr size_t kCacheCapacity = 100000;
    static constexpr size_t kCacheWordBytes = 256;
    mutable std::mutex cache_mutex_;
    mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace mst
