// The tokenizer.json "decoder": how token strings become text. Supported: ByteLevel (the
// GPT-2 byte alphabet), and the SentencePiece-style chain Replace (String or Regex pattern),
// ByteFallback ("<0xNN>" tokens are bytes), Fuse (join), Strip (cut up to n of a character
// from each end of each token) and Metaspace ("▁" is a space, dropped in the first token
// unless prepend_scheme is "never"); any of them in a Sequence. Others, and a missing
// decoder, are MST_ERR_UNSUPPORTED.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/onig_regex.h"

namespace mst {

class Decoder {
public:
    static std::unique_ptr<Decoder> from_json(const nlohmann::json &spec, const std::string &origin);
    ~Decoder();

    // The bytes one token stands for wherever it stands (for streaming output): the chain
    // without its steps that depend on a token's position or neighbours (Fuse, Strip and
    // Metaspace's first-token rule).
    std::string token_bytes(const std::string &token) const;

    // The whole chain over a sequence of token strings; the result may be invalid UTF-8.
    std::string decode(std::vector<std::string> tokens) const;

    // Whether decode is just the concatenation of token_bytes (ByteLevel alone).
    bool concatenates() const { return concatenates_; }
    // Whether the chain is SentencePiece's (ByteFallback or Metaspace in it).
    bool sentencepiece() const { return sentencepiece_; }

private:
    enum class Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace };
    struct Step {
        Kind kind = Kind::ByteLevel;
        std::unique_ptr<OnigRegex> regex;  // Replace
        std::string text;                  // Replace's content, Strip's character, Metaspace's replacement
        size_t start = 0, stop = 0;        // Strip
        bool strip_first = false;          // Metaspace: drop the replacement in the first token
    };
    void add(const nlohmann::json &spec, const std::string &origin, const std::string &where);
    static void apply_to_token(const Step &step, std::string &token);

    std::vector<Step> steps_;
    bool concatenates_ = true;
    bool sentencepiece_ = false;
};

}  // namespace mst
