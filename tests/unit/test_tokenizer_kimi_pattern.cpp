// Kimi's split pattern uses character-class intersections ([...&&[^\p{Han}]]), which PCRE2
// lacks; onig_to_pcre2 rewrites each as a lookahead. ICU's regex engine has intersections
// natively, so here it is the independent matcher: the translated classes must contain
// exactly the code points ICU's sets contain, and the whole pattern must split text made
// of every code point exactly as ICU splits it.
#include <gtest/gtest.h>
#include <unicode/uchar.h>
#include <unicode/uregex.h>
#include <unicode/ustring.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/onig_regex.h"
#include "tokenizer/tiktoken_specials.h"
#include "tokenizer/utf8.h"

namespace {

using Spans = std::vector<std::pair<size_t, size_t>>;

constexpr char32_t kLastCodePoint = 0x10FFFF;

bool is_surrogate(char32_t c) { return c >= 0xD800 && c <= 0xDFFF; }

// PCRE2 10.42 carries Unicode 14 tables and ICU 72 Unicode 15: characters assigned in 15
// have properties in one and not the other, so they cannot be compared (and occur in no
// text a Kimi checkpoint was trained on).
bool same_unicode_version(char32_t c) {
    UVersionInfo age;
    u_charAge(static_cast<UChar32>(c), age);
    return age[0] < 15;
}

std::u16string utf16(const std::string &s) {
    std::u16string out(s.size() + 1, u'\0');
    int32_t length = 0;
    UErrorCode status = U_ZERO_ERROR;
    u_strFromUTF8(out.data(), static_cast<int32_t>(out.size()), &length, s.data(), static_cast<int32_t>(s.size()),
                  &status);
    EXPECT_TRUE(U_SUCCESS(status)) << u_errorName(status);
    out.resize(static_cast<size_t>(length));
    return out;
}

// The pattern as ICU must run it to mean what tiktoken's Rust regex means: ICU's \s is
// [\t\n\f\r\p{Z}], not the White_Space property, so that is spelled out; and a bare script
// name (\p{Han}) is the Script_Extensions property in the Rust regex crate (and in PCRE2
// since 10.40) but the Script property in ICU, so ICU is told scx (U+3006 and the
// ideographic tone marks U+302A..U+302D are Han by extension only).
std::string for_icu(std::string_view pattern) {
    std::string out;
    for (size_t i = 0; i < pattern.size(); ++i) {
        if (pattern.substr(i, 7) == "\\p{Han}") {
            out += "\\p{scx=Han}";
            i += 6;
            continue;
        }
        if (pattern[i] == '\\' && i + 1 < pattern.size()) {
            if (pattern[i + 1] == 's') out += "\\p{White_Space}";
            else if (pattern[i + 1] == 'S') out += "\\P{White_Space}";
            else out.append(pattern.substr(i, 2));
            ++i;
            continue;
        }
        out.push_back(pattern[i]);
    }
    return out;
}

// ICU's matches of pattern in text, as UTF-8 byte ranges.
Spans icu_spans(const std::string &pattern, const std::string &text) {
    const std::u16string p = utf16(pattern);
    UParseError parse{};
    UErrorCode status = U_ZERO_ERROR;
    URegularExpression *regex = uregex_open(p.data(), static_cast<int32_t>(p.size()), 0, &parse, &status);
    EXPECT_TRUE(U_SUCCESS(status)) << "ICU rejects /" << pattern << "/: " << u_errorName(status);
    if (U_FAILURE(status)) return {};
    const std::u16string t = utf16(text);
    uregex_setText(regex, t.data(), static_cast<int32_t>(t.size()), &status);
    // UTF-16 offset -> UTF-8 offset.
    std::vector<size_t> byte_at(t.size() + 1, 0);
    size_t bytes = 0;
    for (size_t i = 0; i < t.size(); ++i) {
        byte_at[i] = bytes;
        const char16_t u = t[i];
        if (u < 0x80) bytes += 1;
        else if (u < 0x800) bytes += 2;
        else if (u >= 0xD800 && u <= 0xDBFF) bytes += 4;  // with its low surrogate: 4 in all
        else if (u >= 0xDC00 && u <= 0xDFFF) bytes += 0;
        else bytes += 3;
    }
    byte_at[t.size()] = bytes;
    Spans out;
    while (uregex_findNext(regex, &status) && U_SUCCESS(status)) {
        const int32_t begin = uregex_start(regex, 0, &status);
        const int32_t end = uregex_end(regex, 0, &status);
        out.emplace_back(byte_at[static_cast<size_t>(begin)], byte_at[static_cast<size_t>(end)]);
    }
    EXPECT_TRUE(U_SUCCESS(status)) << u_errorName(status);
    uregex_close(regex);
    return out;
}

Spans pcre2_spans(std::string_view pattern, const std::string &text) {
    const mst::OnigRegex regex(pattern, false, "kimi test");
    Spans out;
    regex.find_all(text, out);
    return out;
}

// The two intersected classes of the pattern, checked code point by code point: every
// code point in one string, matched one at a time by the translated class, against ICU's
// regex of the same class.
TEST(KimiPattern, IntersectedClassesHoldTheSameCodePointsAsIcu) {
    for (const char *klass : {R"([\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]])",
                              R"([\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]])"}) {
        std::string text;
        std::vector<char32_t> at_byte;
        for (char32_t c = 0; c <= kLastCodePoint; ++c) {
            if (is_surrogate(c) || !same_unicode_version(c)) continue;
            at_byte.resize(text.size() + 1, 0);
            at_byte[text.size()] = c;
            mst::utf8::append(text, c);
        }
        std::set<char32_t> matched, icu_matched;
        for (const auto &[b, e] : pcre2_spans(klass, text)) {
            ASSERT_EQ(mst::utf8::decode_at(text, b).length, e - b) << "one match per code point";
            matched.insert(at_byte[b]);
        }
        for (const auto &[b, e] : icu_spans(for_icu(klass), text)) {
            ASSERT_EQ(mst::utf8::decode_at(text, b).length, e - b) << "one match per code point";
            icu_matched.insert(at_byte[b]);
        }
        size_t members = 0, disagreements = 0;
        for (char32_t c = 0; c <= kLastCodePoint; ++c) {
            if (is_surrogate(c) || !same_unicode_version(c)) continue;
            const bool icu = icu_matched.count(c) > 0;
            members += icu;
            if (icu != (matched.count(c) > 0) && ++disagreements <= 10)
                ADD_FAILURE() << klass << ": U+" << std::hex << static_cast<uint32_t>(c) << " ICU " << icu;
        }
        EXPECT_EQ(disagreements, 0u) << klass;
        EXPECT_GT(members, 30000u) << klass << " should hold the letters of most scripts";
        // Han is what the intersection removes; a Han character must not be in it.
        EXPECT_FALSE(matched.count(U'中'));
        EXPECT_TRUE(matched.count(U'ひ') || std::string(klass).find("Ll") == 1);
    }
}

// The whole pattern splits text made of every assigned code point, each set among letters of both
// cases, Han, digits, spaces and a contraction, exactly as ICU splits it.
TEST(KimiPattern, SplitsEveryCodePointAsIcuDoes) {
    const std::string icu_pattern = for_icu(mst::kKimiSplitPattern);
    std::string text;
    size_t code_points = 0, chunks = 0;
    const auto compare = [&] {
        const Spans expected = icu_spans(icu_pattern, text);
        const Spans got = pcre2_spans(mst::kKimiSplitPattern, text);
        if (got != expected) {
            size_t k = 0;
            while (k < got.size() && k < expected.size() && got[k] == expected[k]) ++k;
            const size_t at = k < expected.size() ? expected[k].first : k < got.size() ? got[k].first : 0;
            std::string detail;
            for (size_t j = k > 2 ? k - 2 : 0; j < k + 3; ++j) {
                if (j < expected.size())
                    detail += "\n  ICU   [" + text.substr(expected[j].first, expected[j].second - expected[j].first) + "]";
                if (j < got.size())
                    detail += "\n  PCRE2 [" + text.substr(got[j].first, got[j].second - got[j].first) + "]";
            }
            ADD_FAILURE() << "the splits differ from byte " << at << ":" << detail;
        }
        ++chunks;
        text.clear();
    };
    for (char32_t c = 0; c <= kLastCodePoint; ++c) {
        // Unassigned and private-use code points (most of the range) all have the same
        // properties; the class test above covers them one by one.
        const auto type = u_charType(static_cast<UChar32>(c));
        if (is_surrogate(c) || !same_unicode_version(c) || type == U_UNASSIGNED || type == U_PRIVATE_USE_CHAR)
            continue;
        for (const char *context : {"a", "B", " ", "\xE4\xB8\xAD", "7", "'S", "\n", "-", "\xCC\x81"}) {
            mst::utf8::append(text, c);
            text += context;
        }
        ++code_points;
        if (text.size() > (1u << 16)) compare();
        if (HasFailure()) return;
    }
    compare();
    EXPECT_GT(code_points, 140000u);
    EXPECT_GT(chunks, 10u);
}

// Hand-checked splits that show what the intersection is for: Han never joins a letter run.
TEST(KimiPattern, HanStandsApartFromOtherLetters) {
    const std::string text = "Hello世界abc 中文English's 123456";
    std::vector<std::string> pieces;
    for (const auto &[b, e] : pcre2_spans(mst::kKimiSplitPattern, text)) pieces.push_back(text.substr(b, e - b));
    EXPECT_EQ(pieces, (std::vector<std::string>{"Hello", "世界", "abc", " ", "中文", "English's", " ", "123", "456"}));
}

TEST(KimiPattern, IntersectionTranslationForms) {
    // A negated intersection is a character outside it; loose operands form a class.
    EXPECT_EQ(pcre2_spans("[^a-z&&[^aeiou]]", "bad"), (Spans{{1, 2}}));
    EXPECT_EQ(pcre2_spans("[a-z&&[^aeiou]]+", "strength"), (Spans{{0, 3}, {4, 8}}));
    EXPECT_EQ(pcre2_spans("[a-z&&b-d&&cd]", "abcde"), (Spans{{2, 3}, {3, 4}}));
}

}  // namespace
