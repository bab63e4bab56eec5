// The pre-tokenizer's regular expressions must split text as Oniguruma does in the
// reference: Unicode \s and \w, the inline m flag, and onig's handling of empty matches.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "tokenizer/onig_regex.h"

namespace {

using Spans = std::vector<std::pair<size_t, size_t>>;

Spans spans(const std::string &pattern, const std::string &text, bool literal = false) {
    const mst::OnigRegex regex(pattern, literal, "test");
    Spans out;
    regex.find_all(text, out);
    return out;
}

std::vector<std::string> pieces(const std::string &pattern, const std::string &text) {
    std::vector<std::string> out;
    for (const auto &[b, e] : spans(pattern, text)) out.push_back(text.substr(b, e - b));
    return out;
}

bool whole_match(const std::string &pattern, const std::string &text) {
    const Spans s = spans(pattern, text);
    return s.size() == 1 && s[0] == std::make_pair(size_t{0}, text.size());
}

const char *kQwen =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

TEST(TokenizerRegex, WhitespaceIsTheUnicodeProperty) {
    for (const char *space : {" ", "\t", "\x0B", "\xC2\x85", "\xC2\xA0", "\xE1\x9A\x80", "\xE2\x80\x80", "\xE2\x80\xA8",
                              "\xE2\x80\xAF", "\xE3\x80\x80"})
        EXPECT_TRUE(whole_match("\\s", space)) << "should be whitespace: " << space;
    // U+180E left White_Space in Unicode 6.3 (PCRE2's own \s still has it); U+200B never was.
    for (const char *other : {"\xE1\xA0\x8E", "\xE2\x80\x8B", "a", "\x1C"})
        EXPECT_TRUE(spans("\\s", other).empty()) << "should not be whitespace: " << other;
    EXPECT_TRUE(whole_match("\\S", "\xE1\xA0\x8E"));
    EXPECT_TRUE(whole_match("[^\\s]", "\xE1\xA0\x8E"));
    EXPECT_TRUE(spans("[^\\S]", "\xE1\xA0\x8E").empty());
}

TEST(TokenizerRegex, WordAndHexClassesFollowOniguruma) {
    EXPECT_TRUE(whole_match("\\w+", "a_\xCC\x81\xD9\xA3"));  // letter, underscore, combining mark, Arabic digit
    EXPECT_TRUE(spans("\\w", "-").empty());
    EXPECT_TRUE(whole_match("\\W", "-"));
    EXPECT_TRUE(whole_match("[\\w-]+", "a-b"));
    EXPECT_TRUE(whole_match("\\h+", "09afAF"));
    EXPECT_TRUE(spans("\\h", " ").empty());
    EXPECT_TRUE(whole_match("\\H", "g"));
}

TEST(TokenizerRegex, InlineFlags) {
    EXPECT_TRUE(whole_match("(?i:'s)", "'S"));
    EXPECT_TRUE(whole_match("(?m:a.b)", "a\nb"));  // Oniguruma's m lets the dot match a newline
    EXPECT_TRUE(spans("a.b", "a\nb").empty());
    EXPECT_EQ(mst::onig_to_pcre2("(?im)x(?:y)(?=z)", "test"), "(?is)x(?:y)(?=z)");
}

TEST(TokenizerRegex, EmptyMatchesFollowOniguruma) {
    // An empty match touching the previous match is skipped; elsewhere it is kept.
    EXPECT_EQ(spans("x*", "abc"), (Spans{{0, 0}, {1, 1}, {2, 2}, {3, 3}}));
    EXPECT_EQ(spans("x*", "xxa"), (Spans{{0, 2}, {3, 3}}));
    EXPECT_EQ(spans("x*", ""), (Spans{{0, 0}}));
}

TEST(TokenizerRegex, QwenPatternSplits) {
    EXPECT_EQ(pieces(kQwen, "Hello   world\n\n"), (std::vector<std::string>{"Hello", "  ", " world", "\n\n"}));
    EXPECT_EQ(pieces(kQwen, "I'M 123!?\n"), (std::vector<std::string>{"I", "'M", " ", "1", "2", "3", "!?\n"}));
    EXPECT_EQ(pieces(kQwen, "a\xC2\xA0" "b"), (std::vector<std::string>{"a", "\xC2\xA0" "b"}));
}

TEST(TokenizerRegex, OtherCheckpointPatterns) {
    // DeepSeek-V3's digit and CJK splits and the o200k (gpt-oss) word pattern.
    EXPECT_EQ(pieces(R"(\p{N}{1,3})", "1234567"), (std::vector<std::string>{"123", "456", "7"}));
    EXPECT_EQ(pieces("[\xE4\xB8\x80-\xE9\xBE\xA5\xE3\x81\x80-\xE3\x82\x9F]+", "ab\xE4\xBD\xA0\xE3\x81\x82" "c"),
              (std::vector<std::string>{"\xE4\xBD\xA0\xE3\x81\x82"}));
    const char *o200k =
        R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)"
        R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)"
        R"(\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    EXPECT_EQ(pieces(o200k, "Hello World's HTTPServer 2024!\n"),
              (std::vector<std::string>{"Hello", " World's", " HTTPServer", " ", "202", "4", "!\n"}));
    const char *deepseek = R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|)"
                           R"( ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    EXPECT_EQ(pieces(deepseek, "a.b [x] \\y"), (std::vector<std::string>{"a", ".b", " [", "x", "]", " \\", "y"}));
}

TEST(TokenizerRegex, LiteralPatterns) {
    EXPECT_EQ(spans("a.b", "axb a.b", true), (Spans{{4, 7}}));
    EXPECT_EQ(spans("(", "((", true), (Spans{{0, 1}, {1, 2}}));
    EXPECT_EQ(spans("\xE2\x96\x81", "a\xE2\x96\x81" "b", true), (Spans{{1, 4}}));
}

TEST(TokenizerRegex, UnsupportedConstructsAreReported) {
    for (const char *pattern : {"[[a]b]", "[a&&[[b]c]]", "[a&&]", "[\\W_]", "(?y:x)"}) {
        try {
            mst::OnigRegex regex(pattern, false, "file.json");
            ADD_FAILURE() << "accepted " << pattern;
        } catch (const mst::Error &e) {
            EXPECT_EQ(e.code(), MST_ERR_UNSUPPORTED) << e.what();
            EXPECT_NE(std::string(e.what()).find("file.json"), std::string::npos) << e.what();
        }
    }
    EXPECT_NO_THROW(mst::OnigRegex("[[:alpha:]]+", false, "file.json"));
    // Deep nesting is refused, not recursed into.
    const std::string deep = std::string(5000, '[') + "a" + std::string(5000, ']');
    EXPECT_THROW(mst::OnigRegex(deep, false, "file.json"), mst::Error);
    const std::string deep_and = "[a&&" + std::string(5000, '[') + "a" + std::string(5001, ']');
    EXPECT_THROW(mst::OnigRegex(deep_and, false, "file.json"), mst::Error);
    // Intersections are translated (test_tokenizer_kimi_pattern checks them against ICU).
    EXPECT_NO_THROW(mst::OnigRegex("[a-z&&[^b]]", false, "file.json"));
}

}  // namespace
