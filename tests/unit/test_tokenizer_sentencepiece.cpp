// SentencePiece-style BPE in tokenizer.json (Llama 2, Mistral, Mixtral): "▁" for spaces
// (Prepend + Replace normalizers, or the Metaspace pre-tokenizer), merges over the whole
// piece, byte_fallback to "<0xNN>" tokens, and the decoders that undo it (Replace,
// ByteFallback, Fuse, Strip, Metaspace). Expected ids here are worked out by hand from the
// merge ranks; test_tokenizer_reference checks Llama 2's real file against @lenml/tokenizers.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "expect_error.h"
#include "test_paths.h"
#include "tokenizer/tokenizer.h"

namespace {

using mst::Tokenizer;
using mst::test::expect_error;
using Ids = std::vector<int32_t>;

const std::string kSpace = "\xE2\x96\x81";  // "▁"

// ids: <unk> 0, <s> 1, </s> 2, <0x00>..<0xFF> 3..258, then ▁ a b c ▁a ab ▁ab.
constexpr int32_t kUnk = 0, kBos = 1, kMeta = 259, kA = 260, kB = 261, kC = 262, kMetaA = 263, kAB = 264,
                  kMetaAB = 265;
int32_t byte_id(unsigned char b) { return 3 + b; }

struct Sp {
    nlohmann::json doc;

    // Llama 2's layout: normalizer Prepend "▁" + Replace " " -> "▁", no pre-tokenizer, and
    // the decoder chain Replace, ByteFallback, Fuse, Strip.
    Sp() {
        nlohmann::json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
        for (int b = 0; b < 256; ++b) {
            char name[8];
            std::snprintf(name, sizeof name, "<0x%02X>", b);
            vocab[name] = 3 + b;
        }
        vocab[kSpace] = kMeta;
        vocab["a"] = kA;
        vocab["b"] = kB;
        vocab["c"] = kC;
        vocab[kSpace + "a"] = kMetaA;
        vocab["ab"] = kAB;
        vocab[kSpace + "ab"] = kMetaAB;
        // Rank order: a+b first, then ▁+a, ▁a+b, ▁+ab.
        using nlohmann::json;
        const json merges = json::array({json::array({"a", "b"}), json::array({kSpace, "a"}),
                                         json::array({kSpace + "a", "b"}), json::array({kSpace, "ab"})});
        auto special = [](int id, const char *content) {
            return nlohmann::json{{"id", id},          {"content", content}, {"single_word", false}, {"lstrip", false},
                                  {"rstrip", false},   {"normalized", false}, {"special", true}};
        };
        doc = {{"version", "1.0"},
               {"added_tokens", {special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")}},
               {"normalizer",
                {{"type", "Sequence"},
                 {"normalizers",
                  {{{"type", "Prepend"}, {"prepend", kSpace}},
                   {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}}}}}},
               {"pre_tokenizer", nullptr},
               {"post_processor", nullptr},
               {"decoder",
                {{"type", "Sequence"},
                 {"decoders",
                  {{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                   {{"type", "ByteFallback"}},
                   {{"type", "Fuse"}},
                   {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
               {"model",
                {{"type", "BPE"},
                 {"dropout", nullptr},
                 {"unk_token", "<unk>"},
                 {"continuing_subword_prefix", nullptr},
                 {"end_of_word_suffix", nullptr},
                 {"fuse_unk", true},
                 {"byte_fallback", true},
                 {"vocab", vocab},
                 {"merges", merges}}}};
    }

    // Mistral's newer layout: no normalizer, the Metaspace pre-tokenizer and decoder.
    Sp &metaspace(const std::string &scheme, bool split) {
        doc["normalizer"] = nullptr;
        doc["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", kSpace}, {"prepend_scheme", scheme}, {"split", split}};
        doc["decoder"] = {{"type", "Metaspace"}, {"replacement", kSpace}, {"prepend_scheme", scheme}, {"split", split}};
        return *this;
    }

    std::unique_ptr<Tokenizer> load() const { return Tokenizer::from_strings(doc.dump(), "", "sp/tokenizer.json"); }
};

Ids bytes_of(const std::string &text) {
    Ids ids;
    for (char c : text) ids.push_back(byte_id(static_cast<unsigned char>(c)));
    return ids;
}

Ids cat(Ids a, const Ids &b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

TEST(SentencePiece, MergesByRankOverTheWholePiece) {
    const auto t = Sp().load();
    EXPECT_EQ(t->kind(), mst::TokenizerKind::SentencePieceBpe);
    EXPECT_STREQ(mst::tokenizer_kind_name(t->kind()), "SentencePiece BPE");
    // "▁ab": a+b (rank 0) before ▁+a (rank 1), then ▁+ab.
    EXPECT_EQ(t->encode("ab"), (Ids{kMetaAB}));
    // No pre-tokenizer: "▁ab▁ab" is one word, and both halves merge the same way.
    EXPECT_EQ(t->encode("ab ab"), (Ids{kMetaAB, kMetaAB}));
    EXPECT_EQ(t->encode("ac"), (Ids{kMetaA, kC}));
    EXPECT_EQ(t->encode("  a"), (Ids{kMeta, kMeta, kMetaA}));
    // Prepend adds nothing to empty text.
    EXPECT_EQ(t->encode(""), (Ids{}));
}

TEST(SentencePiece, ByteFallbackForCharactersOutsideTheVocabulary) {
    const auto t = Sp().load();
    const std::string emoji = "\xF0\x9F\x98\x80";
    EXPECT_EQ(t->encode("ac" + emoji + "b"), cat(cat(Ids{kMetaA, kC}, bytes_of(emoji)), Ids{kB}));
    EXPECT_EQ(t->encode("\xC3\xA9"), cat(Ids{kMeta}, bytes_of("\xC3\xA9")));
    // Invalid UTF-8 is repaired to U+FFFD first, which falls back to its bytes too.
    EXPECT_EQ(t->encode("a\xFF"), cat(Ids{kMetaA}, bytes_of("\xEF\xBF\xBD")));
}

TEST(SentencePiece, UnkWhenAByteTokenIsMissingFusedWhenAsked) {
    Sp sp;
    sp.doc["model"]["vocab"].erase("<0xF0>");
    const std::string emoji = "\xF0\x9F\x98\x80";
    EXPECT_EQ(sp.load()->encode("a" + emoji + emoji + "b"), (Ids{kMetaA, kUnk, kB}));
    sp.doc["model"]["fuse_unk"] = false;
    EXPECT_EQ(sp.load()->encode("a" + emoji + emoji + "b"), (Ids{kMetaA, kUnk, kUnk, kB}));
}

TEST(SentencePiece, DecoderChainUndoesTheSpaces) {
    const auto t = Sp().load();
    const std::string emoji = "\xF0\x9F\x98\x80";
    for (const std::string &text : std::vector<std::string>{"ab", "ab ab", "  a", "ac" + emoji + "b", "a\n\nb"})
        EXPECT_EQ(t->decode(t->encode(text)), text) << text;
    // Strip removes one leading space of the whole text, so a leading <s> keeps the next one.
    EXPECT_EQ(t->decode(Ids{kBos, kMetaAB, kMetaA}), "<s> ab a");
    EXPECT_EQ(t->decode(Ids{kMeta, kMetaA}), " a");
    // Per token, for streaming: the replacement is a space and a byte token its byte.
    EXPECT_EQ(t->token_bytes(kMetaAB), " ab");
    EXPECT_EQ(t->token_bytes(byte_id('A')), "A");
    EXPECT_EQ(t->token_bytes(byte_id(0xF0)), "\xF0");
    EXPECT_EQ(t->token_text(byte_id(0xF0)), "<0xF0>");
    // A lone byte of a longer character decodes to U+FFFD.
    EXPECT_EQ(t->decode(Ids{kMetaA, byte_id(0xF0)}), "a\xEF\xBF\xBD");
}

TEST(SentencePiece, SpecialTokensSplitThePieces) {
    const auto t = Sp().load();
    // Each piece between special tokens gets its own "▁", as in the reference.
    EXPECT_EQ(t->encode("ab<s>ab"), (Ids{kMetaAB, kBos, kMetaAB}));
    EXPECT_EQ(t->encode("<s>ab</s>"), (Ids{kBos, kMetaAB, 2}));
}

TEST(SentencePiece, MetaspacePrependSchemes) {
    const auto first = Sp().metaspace("first", false).load();
    EXPECT_EQ(first->kind(), mst::TokenizerKind::SentencePieceBpe);
    EXPECT_EQ(first->encode("ab ab"), (Ids{kMetaAB, kMetaAB}));
    // "first": only a piece at the very start of the text gets the prefix.
    EXPECT_EQ(first->encode("<s>ab"), (Ids{kBos, kAB}));
    EXPECT_EQ(first->encode("ab<s>ab"), (Ids{kMetaAB, kBos, kAB}));
    const auto always = Sp().metaspace("always", false).load();
    EXPECT_EQ(always->encode("<s>ab"), (Ids{kBos, kMetaAB}));
    EXPECT_EQ(always->encode(kSpace + "ab"), (Ids{kMetaAB})) << "no second prefix before an existing one";
    const auto never = Sp().metaspace("never", false).load();
    EXPECT_EQ(never->encode("ab"), (Ids{kAB}));
    EXPECT_EQ(never->encode("ab a"), (Ids{kAB, kMetaA}));
}

TEST(SentencePiece, MetaspaceSplitStartsAWordAtEachReplacement) {
    const auto split = Sp().metaspace("always", true).load();
    // "▁a▁▁b" -> "▁a" "▁" "▁b"; "▁b" is no token, so ▁ and b.
    EXPECT_EQ(split->encode("a  b"), (Ids{kMetaA, kMeta, kMeta, kB}));
    // Unsplit, "▁a▁▁b" is one word: ▁+a, and the rest stays apart.
    const auto whole = Sp().metaspace("always", false).load();
    EXPECT_EQ(whole->encode("a  b"), (Ids{kMetaA, kMeta, kMeta, kB}));
    EXPECT_EQ(split->encode("ab ab"), (Ids{kMetaAB, kMetaAB}));
}

TEST(SentencePiece, MetaspaceDecoder) {
    const auto first = Sp().metaspace("first", false).load();
    EXPECT_EQ(first->decode(Ids{kMetaAB, kMetaAB}), "ab ab");
    EXPECT_EQ(first->decode(first->encode("a  b ab")), "a  b ab");
    EXPECT_EQ(first->token_bytes(kMetaAB), " ab");
    const auto never = Sp().metaspace("never", false).load();
    EXPECT_EQ(never->decode(Ids{kMetaAB, kMetaAB}), " ab ab");
}

TEST(SentencePiece, NormalizersInOrder) {
    Sp sp;
    // Strip both ends, collapse runs of spaces with a Regex, then the Llama pair.
    nlohmann::json &list = sp.doc["normalizer"]["normalizers"];
    const nlohmann::json strip = {{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}};
    const nlohmann::json collapse = {{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", " "}};
    list = nlohmann::json::array({strip, collapse, list[0], list[1]});
    const auto t = sp.load();
    EXPECT_EQ(t->encode(" \t ab    ab \n"), (Ids{kMetaAB, kMetaAB}));
    sp.doc["normalizer"]["normalizers"][0]["strip_right"] = false;
    EXPECT_EQ(sp.load()->encode(" ab  "), (Ids{kMetaAB, kMeta}));
    // NFKC before Prepend: the ligature "ﬁ" becomes "fi", bytes here.
    Sp nfkc;
    nlohmann::json &nfkc_list = nfkc.doc["normalizer"]["normalizers"];
    nfkc_list = nlohmann::json::array({nlohmann::json{{"type", "NFKC"}}, nfkc_list[0], nfkc_list[1]});
    EXPECT_EQ(nfkc.load()->encode("\xEF\xAC\x81"), cat(Ids{kMeta}, bytes_of("fi")));
}

// The hand-written file that seeds the fuzzer: Prepend/Replace normalizers and a Metaspace
// pre-tokenizer that splits, a template adding <s>, every SentencePiece decoder in one chain.
TEST(SentencePiece, CombinedSeedFile) {
    const auto t = Tokenizer::load_dir(mst::test::data_path("tokenizer_sentencepiece"));
    EXPECT_EQ(t->kind(), mst::TokenizerKind::SentencePieceBpe);
    // "▁hello": h+e, ▁+he, l+l, ll+o by rank; ▁he+llo is no merge, so "▁hello" never forms.
    const int32_t he = *t->token_id(kSpace + "he"), llo = *t->token_id("llo");
    EXPECT_EQ(t->encode("hello ab"), (Ids{kBos, he, llo, kMetaAB}));
    EXPECT_EQ(t->encode("hello ab", false), (Ids{he, llo, kMetaAB}));
    EXPECT_EQ(t->decode(t->encode("hello ab", false)), "hello ab");
    EXPECT_EQ(t->decode(t->encode("hello ab")), "<s> hello ab");
}

TEST(SentencePiece, MalformedComponentsAreNamed) {
    const auto bad = [](auto edit, std::initializer_list<std::string_view> parts) {
        Sp sp;
        edit(sp.doc);
        expect_error([&] { sp.load(); }, MST_ERR_BAD_FORMAT, parts);
    };
    bad([](nlohmann::json &d) { d["decoder"]["decoders"][3]["content"] = "ab"; },
        {"sp/tokenizer.json", "decoder.decoders[3].content", "not one character"});
    bad([](nlohmann::json &d) { d["decoder"]["decoders"][3]["start"] = -1; },
        {"decoder.decoders[3].start", "small non-negative integer"});
    bad([](nlohmann::json &d) { d["decoder"]["decoders"][0].erase("pattern"); }, {"decoder.decoders[0]", "pattern"});
    bad([](nlohmann::json &d) { d["normalizer"]["normalizers"][1]["pattern"] = {{"Glob", "*"}}; },
        {"normalizer.normalizers[1].pattern", "neither \"String\" nor \"Regex\""});
    bad([](nlohmann::json &d) { d["normalizer"]["normalizers"][1]["pattern"] = {{"String", ""}}; },
        {"normalizer.normalizers[1].pattern.String is empty"});
    bad([](nlohmann::json &d) { d["normalizer"]["normalizers"][0].erase("prepend"); },
        {"normalizer.normalizers[0]", "prepend"});
    bad([](nlohmann::json &d) { d["model"]["byte_fallback"] = "yes"; }, {"model.byte_fallback", "not a boolean"});
    bad([](nlohmann::json &d) {
            d["pre_tokenizer"] = {{"type", "Metaspace"}, {"prepend_scheme", "sometimes"}};
        },
        {"pre_tokenizer.prepend_scheme", "\"sometimes\""});
    bad([](nlohmann::json &d) { d["decoder"] = {{"type", "Metaspace"}, {"prepend_scheme", "sometimes"}}; },
        {"decoder.prepend_scheme", "\"sometimes\""});
    bad([](nlohmann::json &d) { d["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "__"}}; },
        {"pre_tokenizer.replacement", "not one character"});
}

}  // namespace
