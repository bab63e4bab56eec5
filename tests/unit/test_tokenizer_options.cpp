// Tokenizer behaviour on hand-made tokenizer.json documents: merge formats and ranks,
// added-token options, ignore_merges, normalizers, pre-tokenizer steps, post-processors,
// odd input and tokenizer_config.json forms.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_paths.h"
#include "test_tokenizer_support.h"
#include "tokenizer/tokenizer.h"

namespace {

using mst::Tokenizer;
using mst::test::HandMade;
using Ids = std::vector<int32_t>;

std::unique_ptr<Tokenizer> make(const HandMade &h, const std::string &config = "") {
    return Tokenizer::from_strings(h.str(), config, "hand-made tokenizer.json");
}

Ids bytes_of(const std::string &raw) {
    Ids ids;
    for (char c : raw) ids.push_back(static_cast<unsigned char>(c));
    return ids;
}

HandMade hello() { return HandMade({{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {" ", "w"}}); }

TEST(TokenizerMerges, PairFormat) {
    const HandMade h = hello();
    const auto tok = make(h);
    EXPECT_EQ(tok->encode("hello"), (Ids{h.id("hello")}));
    EXPECT_EQ(tok->encode("hello world"), (Ids{h.id("hello"), h.id(" w"), 'o', 'r', 'l', 'd'}));
    EXPECT_EQ(tok->decode(tok->encode("hello world")), "hello world");
}

TEST(TokenizerMerges, StringFormatGivesTheSameIds) {
    HandMade h = hello();
    const Ids pairs = make(h)->encode("hello hell help world");
    h.merges_as_strings();
    ASSERT_TRUE(h.doc["model"]["merges"][0].is_string());
    EXPECT_EQ(make(h)->encode("hello hell help world"), pairs);
}

TEST(TokenizerMerges, LowerRankWins) {
    // "abc": whichever pair is listed first merges first.
    const HandMade bc_first({{"b", "c"}, {"a", "b"}});
    EXPECT_EQ(make(bc_first)->encode("abc"), (Ids{'a', bc_first.id("bc")}));
    const HandMade ab_first({{"a", "b"}, {"b", "c"}});
    EXPECT_EQ(make(ab_first)->encode("abc"), (Ids{ab_first.id("ab"), 'c'}));
}

TEST(TokenizerMerges, EqualRanksMergeLeftmostFirst) {
    const HandMade h({{"a", "a"}});
    EXPECT_EQ(make(h)->encode("aaa"), (Ids{h.id("aa"), 'a'}));
    EXPECT_EQ(make(h)->encode("aaaa"), (Ids{h.id("aa"), h.id("aa")}));
}

TEST(TokenizerMerges, IgnoreMerges) {
    HandMade h({{"a", "b"}});
    const int32_t abc = h.add_vocab("abc");
    EXPECT_EQ(make(h)->encode("abc"), (Ids{h.id("ab"), 'c'}));
    h.doc["model"]["ignore_merges"] = true;
    EXPECT_EQ(make(h)->encode("abc"), (Ids{abc}));
    EXPECT_EQ(make(h)->encode("abcd"), (Ids{h.id("ab"), 'c', 'd'}));
}

TEST(TokenizerMerges, UnknownCharactersWithAndWithoutUnk) {
    // A vocabulary without the byte alphabet (no ByteLevel pre-tokenizer): characters
    // it lacks are dropped without unk_token, become <unk> with it, fused when asked.
    HandMade h;
    h.doc["pre_tokenizer"] = nullptr;
    h.doc["model"]["vocab"] = {{"a", 0}, {"b", 1}, {"<unk>", 2}};
    h.doc["model"]["merges"] = nlohmann::json::array();
    EXPECT_EQ(make(h)->encode("axyb"), (Ids{0, 1}));
    h.doc["model"]["unk_token"] = "<unk>";
    EXPECT_EQ(make(h)->encode("axyb"), (Ids{0, 2, 2, 1}));
    h.doc["model"]["fuse_unk"] = true;
    EXPECT_EQ(make(h)->encode("axyb"), (Ids{0, 2, 1}));
}

TEST(TokenizerMerges, ContinuingSubwordPrefixAndSuffix) {
    HandMade h;
    h.doc["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Removed"}};
    h.doc["model"]["vocab"] = {{"a", 0}, {"##b", 1}, {"##c</w>", 2}, {"a##b", 3}, {"ab", 4}, {"c</w>", 5}};
    h.doc["model"]["continuing_subword_prefix"] = "##";
    h.doc["model"]["end_of_word_suffix"] = "</w>";
    h.doc["model"]["merges"] = nlohmann::json::array({nlohmann::json::array({"a", "##b"})});
    // "a" "##b" merge into a + "b" = "ab"; the last character carries the suffix.
    EXPECT_EQ(make(h)->encode("abc c"), (Ids{4, 2, 5}));
}

TEST(TokenizerAddedTokens, SpecialTokenMidText) {
    HandMade h = hello();
    const int32_t end = h.add_token("<|end|>", true);
    const auto tok = make(h);
    EXPECT_EQ(tok->encode("hello<|end|>hello"), (Ids{h.id("hello"), end, h.id("hello")}));
    EXPECT_EQ(tok->encode("<|end|><|end|>"), (Ids{end, end}));
    // An incomplete special token is plain text.
    EXPECT_EQ(tok->encode("<|end"), bytes_of("<|end"));
    EXPECT_TRUE(tok->is_special(end));
    EXPECT_EQ(tok->decode(Ids{h.id("hello"), end}), "hello<|end|>");
    EXPECT_EQ(tok->token_text(end), "<|end|>");
    EXPECT_EQ(tok->token_bytes(end), "<|end|>");
    EXPECT_EQ(tok->vocab_size(), end + 1);
}

TEST(TokenizerAddedTokens, LongestMatchFirst) {
    HandMade h;
    const int32_t a = h.add_token("<a>", true);
    const int32_t ab = h.add_token("<a><b>", true);
    const auto tok = make(h);
    EXPECT_EQ(tok->encode("<a><b><a>"), (Ids{ab, a}));
}

TEST(TokenizerAddedTokens, NonSpecialTokens) {
    HandMade h;
    const int32_t think = h.add_token("<think>", false);
    const auto tok = make(h);
    EXPECT_EQ(tok->encode("x<think>y"), (Ids{'x', think, 'y'}));
    EXPECT_FALSE(tok->is_special(think));
}

TEST(TokenizerAddedTokens, LstripAndRstrip) {
    HandMade h;
    const int32_t both = h.add_token("<m>", true, true, true);
    const int32_t left = h.add_token("<l>", true, true, false);
    const int32_t right = h.add_token("<r>", true, false, true);
    const auto tok = make(h);
    // The stripped whitespace belongs to the token and never reaches the model.
    EXPECT_EQ(tok->encode("a  <m>  b"), (Ids{'a', both, 'b'}));
    EXPECT_EQ(tok->encode("a <l> b"), (Ids{'a', left, ' ', 'b'}));
    EXPECT_EQ(tok->encode("a <r> b"), (Ids{'a', ' ', right, 'b'}));
    // Unicode whitespace counts (U+3000 ideographic space).
    EXPECT_EQ(tok->encode("a\xE3\x80\x80<m>\tb"), (Ids{'a', both, 'b'}));
    // A token without strip options keeps its neighbours' spaces.
    HandMade plain;
    const int32_t p = plain.add_token("<m>", true);
    EXPECT_EQ(make(plain)->encode("a <m> b"), (Ids{'a', ' ', p, ' ', 'b'}));
}

TEST(TokenizerAddedTokens, SingleWord) {
    HandMade h;
    const int32_t ony = h.add_token("ony", false, false, false, true);
    const auto tok = make(h);
    EXPECT_EQ(tok->encode("ony"), (Ids{ony}));
    EXPECT_EQ(tok->encode("Tony ony!"), (Ids{'T', 'o', 'n', 'y', ' ', ony, '!'}));
    EXPECT_EQ(tok->encode("ony_"), bytes_of("ony_"));
}

TEST(TokenizerAddedTokens, NormalizedTokensMatchTheNormalizedText) {
    HandMade h;
    h.doc["normalizer"] = {{"type", "NFC"}};
    // The token is written decomposed; normalized=true matches its NFC form in NFC text.
    const int32_t cafe = h.add_token("cafe\xCC\x81", false, false, false, false, true);
    const int32_t raw = h.add_token("ne\xCC\x81", false, false, false, false, false);
    const auto tok = make(h);
    EXPECT_EQ(tok->encode("caf\xC3\xA9"), (Ids{cafe}));
    EXPECT_EQ(tok->encode("cafe\xCC\x81"), (Ids{cafe}));
    // normalized=false matches the raw text only.
    EXPECT_EQ(tok->encode("ne\xCC\x81"), (Ids{raw}));
    EXPECT_EQ(tok->encode("n\xC3\xA9"), bytes_of("n\xC3\xA9"));
}

TEST(TokenizerNormalizer, NfcComposes) {
    HandMade h;
    h.doc["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}}}};
    const auto tok = make(h);
    EXPECT_EQ(tok->encode("e\xCC\x81"), bytes_of("\xC3\xA9"));
    EXPECT_EQ(tok->encode("\xE2\x84\xAB"), bytes_of("\xC3\x85"));  // Angstrom sign -> A ring
    h.doc["normalizer"] = {{"type", "NFKC"}};
    EXPECT_EQ(make(h)->encode("\xEF\xAC\x81"), bytes_of("fi"));  // the fi ligature
}

TEST(TokenizerEncode, EmptyText) {
    const auto tok = make(hello());
    EXPECT_TRUE(tok->encode("").empty());
    EXPECT_EQ(tok->decode(Ids{}), "");
}

TEST(TokenizerEncode, InvalidUtf8IsReplaced) {
    const auto tok = make(hello());
    // Each maximal invalid subpart becomes one U+FFFD before encoding.
    EXPECT_EQ(tok->encode("he\xFFllo"), tok->encode("he\xEF\xBF\xBDllo"));
    EXPECT_EQ(tok->decode(tok->encode("a\xE4\xBD")), "a\xEF\xBF\xBD");
    EXPECT_EQ(tok->decode(tok->encode("\xC0\x80x\xED\xA0\x80")),
              "\xEF\xBF\xBD\xEF\xBF\xBDx\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    const std::string nul("a\0b", 3);
    EXPECT_EQ(tok->decode(tok->encode(nul)), nul);
}

TEST(TokenizerDecode, PartialUtf8) {
    const auto tok = make(hello());
    // U+4F60 is E4 BD A0: one byte token each; a prefix of them is not text yet.
    EXPECT_EQ(tok->decode(Ids{0xE4, 0xBD, 0xA0}), "\xE4\xBD\xA0");
    EXPECT_EQ(tok->decode(Ids{0xE4, 0xBD}), "\xEF\xBF\xBD");
    EXPECT_EQ(tok->decode(Ids{0xE4, 'a'}), "\xEF\xBF\xBD" "a");
    EXPECT_EQ(tok->token_bytes(0xE4), "\xE4");
    EXPECT_EQ(tok->token_text(' '), "\xC4\xA0");
}

TEST(TokenizerPreTokenizer, ByteLevelPrefixSpace) {
    HandMade h = hello();
    h.doc["pre_tokenizer"]["add_prefix_space"] = true;
    const auto tok = make(h);
    EXPECT_EQ(tok->encode("world"), (Ids{h.id(" w"), 'o', 'r', 'l', 'd'}));
    EXPECT_EQ(tok->encode(" world"), (Ids{h.id(" w"), 'o', 'r', 'l', 'd'}));
}

TEST(TokenizerPreTokenizer, Gpt2SplitKeepsMergesInsideWords) {
    // With the GPT-2 split, "a b" is two words, so the merge (a, space) cannot apply.
    const HandMade h({{"a", " "}});
    EXPECT_EQ(make(h)->encode("a b"), (Ids{'a', ' ', 'b'}));
    HandMade whole({{"a", " "}});
    whole.doc["pre_tokenizer"]["use_regex"] = false;
    EXPECT_EQ(make(whole)->encode("a b"), (Ids{whole.id("a "), 'b'}));
}

TEST(TokenizerPreTokenizer, SplitBehaviors) {
    HandMade h({{"a", "-"}, {"-", "b"}, {"a", "-b"}});
    const auto with = [&](const char *behavior, bool invert) {
        h.doc["pre_tokenizer"] = {
            {"type", "Sequence"},
            {"pretokenizers",
             {{{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}},
              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
        return make(h)->encode("a-b");
    };
    EXPECT_EQ(with("Isolated", false), (Ids{'a', '-', 'b'}));
    EXPECT_EQ(with("Removed", false), (Ids{'a', 'b'}));
    EXPECT_EQ(with("MergedWithPrevious", false), (Ids{h.id("a-"), 'b'}));
    EXPECT_EQ(with("MergedWithNext", false), (Ids{'a', h.id("-b")}));
    EXPECT_EQ(with("Contiguous", false), (Ids{'a', '-', 'b'}));
    EXPECT_EQ(with("Removed", true), (Ids{'-'}));
}

TEST(TokenizerPreTokenizer, Digits) {
    HandMade h({{"1", "2"}});
    h.doc["pre_tokenizer"] = {{"type", "Sequence"},
                              {"pretokenizers",
                               {{{"type", "Digits"}, {"individual_digits", true}},
                                {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
    EXPECT_EQ(make(h)->encode("x12"), (Ids{'x', '1', '2'}));
    h.doc["pre_tokenizer"]["pretokenizers"][0]["individual_digits"] = false;
    EXPECT_EQ(make(h)->encode("x12"), (Ids{'x', h.id("12")}));
}

TEST(TokenizerPostProcessor, TemplateAddsBos) {
    HandMade h = hello();
    const int32_t bos = h.add_token("<s>", true);
    h.doc["post_processor"] = {
        {"type", "Sequence"},
        {"processors",
         {{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}},
          {{"type", "TemplateProcessing"},
           {"single",
            {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
           {"pair", nlohmann::json::array()},
           {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {bos}}, {"tokens", {"<s>"}}}}}}}}}};
    const auto tok = make(h);
    EXPECT_EQ(tok->encode("hello"), (Ids{bos, h.id("hello")}));
    EXPECT_EQ(tok->encode("hello", false), (Ids{h.id("hello")}));
    EXPECT_EQ(tok->encode(""), (Ids{bos}));
}

TEST(TokenizerConfig, EosAndBosForms) {
    HandMade h = hello();
    const int32_t bos = h.add_token("<s>", true);
    const int32_t eos = h.add_token("</s>", true);
    const auto plain = make(h, R"({"eos_token": "</s>", "bos_token": {"__type": "AddedToken", "content": "<s>"}})");
    EXPECT_EQ(plain->eos_id(), eos);
    EXPECT_EQ(plain->bos_id(), bos);
    const auto nulls = make(h, R"({"eos_token": {"content": "</s>"}, "bos_token": null})");
    EXPECT_EQ(nulls->eos_id(), eos);
    EXPECT_EQ(nulls->bos_id(), -1);
    const auto none = make(h);
    EXPECT_EQ(none->eos_id(), -1);
    EXPECT_EQ(none->bos_id(), -1);
    // A vocabulary token (not an added one) may be the eos token too.
    EXPECT_EQ(make(h, R"({"eos_token": "hello"})")->eos_id(), h.id("hello"));
}

TEST(TokenizerConfig, MissingConfigFileMeansNoEos) {
    const auto tok = Tokenizer::load(mst::test::data_path("tokenizer/tokenizer.json"),
                                     mst::test::data_path("tokenizer/no_such_tokenizer_config.json"));
    EXPECT_EQ(tok->eos_id(), -1);
    EXPECT_EQ(tok->bos_id(), -1);
}

}  // namespace
