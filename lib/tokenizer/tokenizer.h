// A Hugging Face tokenizer.json tokenizer (byte-level BPE as Qwen, DeepSeek, gpt-oss and
// similar checkpoints ship it; SentencePiece-style BPE with byte fallback as Llama 2,
// Mistral and Mixtral ship it) or a tiktoken rank file (Kimi K2), producing the same ids as
// the reference implementations (`tokenizers`, tiktoken). Immutable after loading; encode and decode may run on several threads at once.
//
// Invalid UTF-8 given to encode is first repaired: each maximal invalid subpart becomes
// U+FFFD (the reference only accepts valid text, so there is nothing to agree with).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/added_tokens.h"

namespace mst {

class TokenModel;
class Decoder;
class Normalizer;
class PreTokenizer;
class PostProcessor;

// Which kind of tokenizer a checkpoint ships, for reports (`moestream info`).
enum class TokenizerKind {
    ByteLevelBpe,      // tokenizer.json BPE over the GPT-2 byte alphabet (Qwen, DeepSeek, gpt-oss)
    SentencePieceBpe,  // tokenizer.json BPE with byte_fallback / "▁" spaces (Llama 2, Mistral, Mixtral)
    Tiktoken,          // a tiktoken rank file (Kimi K2's tiktoken.model)
};

// "byte-level BPE", "SentencePiece BPE" or "tiktoken".
const char *tokenizer_kind_name(TokenizerKind kind);

class Tokenizer {
public:
    // The tokenizer of a Hugging Face checkpoint directory: tokenizer.json (with the optional
    // tokenizer_config.json) when present; otherwise tiktoken.model with tokenizer_config.json,
    // as Kimi K2 ships it (load_kimi_tiktoken). MST_ERR_IO naming the directory when neither is.
    static std::unique_ptr<Tokenizer> load_dir(const std::string &dir);

    // A tiktoken checkpoint in Moonshot's Kimi layout: the rank file, the split pattern of
    // tokenization_kimi.py, and the special tokens that tokenizer_config.json names (see
    // tiktoken_specials.h); eos/bos from the same config. Errors as for load, naming the file.
    static std::unique_ptr<Tokenizer> load_kimi_tiktoken(const std::string &rank_file_path,
                                                         const std::string &tokenizer_config_path);
    static std::unique_ptr<Tokenizer> kimi_tiktoken_from_strings(std::string_view rank_file,
                                                                 std::string_view tokenizer_config_json,
                                                                 const std::string &origin_for_errors);
    // Any tiktoken encoding: its rank file, its split pattern (Rust regex syntax) and its
    // special tokens (ids after the ranks). tokenizer_config_json may be "" (no eos/bos).
    static std::unique_ptr<Tokenizer> tiktoken_from_strings(std::string_view rank_file, std::string_view pattern,
                                                            std::vector<AddedToken> special_tokens,
                                                            std::string_view tokenizer_config_json,
                                                            const std::string &origin_for_errors);

    // tokenizer_config_path may be "" or name a missing file (then no eos/bos).
    // Throws mst::Error: MST_ERR_IO (cannot read, names path), MST_ERR_BAD_FORMAT (bad JSON /
    // missing fields, names path and what), MST_ERR_UNSUPPORTED (a model type /
    // pre-tokenizer / normalizer it does not handle, names it).
    static std::unique_ptr<Tokenizer> load(const std::string &tokenizer_json_path,
                                           const std::string &tokenizer_config_path);
    static std::unique_ptr<Tokenizer> from_strings(std::string_view tokenizer_json,
                                                   std::string_view tokenizer_config_json,
                                                   const std::string &origin_for_errors);
    // As from_strings, from a tokenizer.json document already in memory as JSON (a GGUF's
    // tokenizer.ggml.* made into one): no text to print and parse again.
    static std::unique_ptr<Tokenizer> from_json(const nlohmann::json &tokenizer_json,
                                                std::string_view tokenizer_config_json,
                                                const std::string &origin_for_errors);
    ~Tokenizer();
    Tokenizer(const Tokenizer &) = delete;
    Tokenizer &operator=(const Tokenizer &) = delete;

    // Like the reference's encode(text): added/special tokens written in the text are
    // recognised, and the post-processor's special tokens are added (add_special_tokens=True).
    std::vector<int32_t> encode(std::string_view text) const;
    // add_special_tokens=false leaves out what the post-processor would add (e.g. a BOS),
    // as a chat prompt that already spells its special tokens needs.
    std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;

    // Like the reference's decode(ids, skip_special_tokens=False); an id out of range is
    // MST_ERR_INVALID_ARGUMENT naming the id. Bytes that do not form valid UTF-8 come out
    // as U+FFFD.
    std::string decode(std::span<const int32_t> ids) const;

    // The raw bytes this token decodes to (for streaming output; may be partial UTF-8).
    const std::string &token_bytes(int32_t id) const;
    // The token string as stored in the vocab.
    const std::string &token_text(int32_t id) const;
    // Max id + 1 over vocab and added tokens.
    int32_t vocab_size() const;
    // From tokenizer_config.json "eos_token" (a string or {"content": ...}); -1 if none.
    int32_t eos_id() const { return eos_id_; }
    // Same for "bos_token".
    int32_t bos_id() const { return bos_id_; }
    std::optional<int32_t> token_id(std::string_view token) const;
    bool is_special(int32_t id) const;
    TokenizerKind kind() const { return kind_; }

private:
    Tokenizer();
    void build(const nlohmann::json &doc, std::string_view config_json, bool has_config);
    void build_tiktoken(std::vector<std::string> by_rank, std::string_view pattern,
                        std::vector<AddedToken> special_tokens, std::string_view config_json, bool has_config);
    void parse_added_tokens(const nlohmann::json &tokens);
    void build_added_matchers();
    void read_optional_config(std::string_view config_json, bool has_config);
    void build_id_tables();
    void read_config(std::string_view config_json);
    void check_id(int32_t id) const;
    void encode_normalized(std::string_view piece, bool at_start, std::vector<int32_t> &ids) const;

    std::string origin_;
    std::string config_origin_;
    TokenizerKind kind_ = TokenizerKind::ByteLevelBpe;
    std::unique_ptr<TokenModel> model_;
    std::unique_ptr<Normalizer> normalizer_;
    std::unique_ptr<PreTokenizer> pre_tokenizer_;
    std::unique_ptr<PostProcessor> post_processor_;
    std::unique_ptr<Decoder> decoder_;  // null for tiktoken, whose tokens are byte-spelled
    std::vector<AddedToken> added_;
    std::unordered_map<std::string, int32_t> added_by_content_;
    std::unique_ptr<AddedTokenMatcher> raw_matcher_;         // tokens with normalized=false
    std::unique_ptr<AddedTokenMatcher> normalized_matcher_;  // tokens with normalized=true

    // Indexed by id; an id that names no token has known_[id] == false.
    std::vector<std::string> texts_;
    std::vector<std::string> bytes_;
    std::vector<bool> known_;
    std::vector<bool> special_;
    int32_t eos_id_ = -1;
    int32_t bos_id_ = -1;
};

}  // namespace mst
