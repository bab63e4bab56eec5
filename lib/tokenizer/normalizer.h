// The tokenizer.json "normalizer": a Unicode normalization form (NFC, NFD, NFKC, NFKD,
// computed by ICU), Prepend (a prefix before non-empty text, as SentencePiece-style files
// put "▁" before each piece), Replace (a String or Regex pattern, every occurrence), Strip
// (leading and/or trailing White_Space), or a Sequence of those; null is no normalization.
// Anything else is MST_ERR_UNSUPPORTED.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/onig_regex.h"

struct UNormalizer2;

namespace mst {

class Normalizer {
public:
    // spec is the "normalizer" value; returns nullptr for null (no normalization).
    static std::unique_ptr<Normalizer> from_json(const nlohmann::json &spec, const std::string &origin);
    ~Normalizer();

    // text must be valid UTF-8; so is the result.
    std::string apply(std::string_view text) const;

private:
    enum class Kind { Form, Prepend, Replace, Strip };
    struct Step {
        Kind kind = Kind::Form;
        const UNormalizer2 *form = nullptr;
        std::string name;                  // the form's name, for errors
        std::string text;                  // Prepend's prefix, Replace's content
        std::unique_ptr<OnigRegex> regex;  // Replace's pattern (a String pattern is quoted)
        bool strip_left = false, strip_right = false;
    };
    void add(const nlohmann::json &spec, const std::string &origin, const std::string &where);
    std::string apply_form(const Step &step, std::string_view text) const;

    std::vector<Step> steps_;
};

}  // namespace mst
