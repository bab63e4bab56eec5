// The tokenizer.json "pre_tokenizer": splits a normalized piece of text into the words that
// the model encodes one by one. Supported: Split (Regex or String pattern, every behavior,
// invert), ByteLevel (add_prefix_space, use_regex with the GPT-2 pattern), Digits, Metaspace
// (spaces become "▁", prepend_scheme, split), and a Sequence of those; null leaves each
// piece whole. Others are MST_ERR_UNSUPPORTED.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/onig_regex.h"

namespace mst {

class PreTokenizer {
public:
    // spec is the "pre_tokenizer" value (null allowed).
    static std::unique_ptr<PreTokenizer> from_json(const nlohmann::json &spec, const std::string &origin);
    ~PreTokenizer();

    // Appends the words of piece (valid UTF-8) to words; empty words are dropped. at_start:
    // the piece begins the text (Metaspace's prepend_scheme "first" prepends only there).
    void split(std::string_view piece, std::vector<std::string> &words, bool at_start = true) const;

    bool has_metaspace() const;

    enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
    enum class Kind { Split, ByteLevel, Digits, Metaspace };
    enum class Prepend { Always, First, Never };
    struct Step {
        Kind kind = Kind::Split;
        std::unique_ptr<OnigRegex> regex;  // Split, ByteLevel with use_regex, Metaspace with split
        Behavior behavior = Behavior::Isolated;
        bool invert = false;
        bool add_prefix_space = false;
        std::string replacement;  // Metaspace
        Prepend prepend = Prepend::Always;
    };

private:
    void add_steps(const nlohmann::json &spec, const std::string &origin, const std::string &where);
    void apply(const Step &step, std::string_view piece, bool at_start, std::vector<std::string> &out) const;

    std::vector<Step> steps_;
};

}  // namespace mst
