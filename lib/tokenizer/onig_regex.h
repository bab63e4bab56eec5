// Regular expressions as the reference tokenizer runs them (Oniguruma through the Rust
// `onig` crate), executed by PCRE2. The pattern is rewritten where the two engines
// disagree on a construct's meaning, and matches are iterated with onig's rule for empty
// matches, so that a pre-tokenizer splits text exactly as the reference does.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mst {

// Rewrites an Oniguruma-syntax pattern into PCRE2 syntax with the same meaning:
// \s \S follow the Unicode White_Space property (PCRE2 also counts U+180E), \w \W follow
// Oniguruma's Unicode word class, \h \H are hex digits, the inline flag m (dot matches
// newline in Oniguruma) becomes s, and a class intersection [A&&B] (which PCRE2 lacks)
// becomes (?:(?=B)A). Constructs PCRE2 cannot express the same way (other nested classes,
// unknown inline flags) are MST_ERR_UNSUPPORTED. The Rust regex crate's syntax (tiktoken
// patterns) means the same as Oniguruma's for every construct translated here.
std::string onig_to_pcre2(std::string_view pattern, const std::string &origin);

class OnigRegex {
public:
    // literal: the pattern is a plain string to find (the {"String": ...} form).
    OnigRegex(std::string_view pattern, bool literal, const std::string &origin);
    ~OnigRegex();
    OnigRegex(const OnigRegex &) = delete;
    OnigRegex &operator=(const OnigRegex &) = delete;

    // Appends the [begin, end) byte ranges of successive non-overlapping matches in text,
    // which must be valid UTF-8. Safe to call from several threads at once.
    void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>> &out) const;

    const std::string &pattern() const { return source_; }

private:
    std::string source_;
    void *code_ = nullptr;  // pcre2_code_8, kept out of the header
};

}  // namespace mst
