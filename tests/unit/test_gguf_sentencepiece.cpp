// A SentencePiece vocabulary in a GGUF file (tokenizer.ggml.model "llama": pieces, scores
// and token types, no merges), built here piece by piece so that each rule shows on its
// own: merges by score (not by id), the "▁" prefix, byte fallback, the unknown token,
// added control and user-defined pieces, BOS / EOS, decoding, and the named errors of a
// broken vocabulary; and a whole Mixtral GGUF carrying one, as real Mixtral GGUFs do, loaded
// and run. llama.cpp's real test vocabulary is checked in test_tokenizer_reference.cpp.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "expect_error.h"
#include "format/gguf_file.h"
#include "gguf_builder.h"
#include "gguf_model_writer.h"
#include "golden.h"
#include "model/gguf_model_files.h"
#include "moestream.hpp"
#include "prompt_logits.h"
#include "test_paths.h"
#include "tokenizer/tokenizer.h"

namespace {

using mst::test::expect_error;
using mst::test::GgufBuilder;

constexpr int32_t kUnk = 0, kBos = 1, kEos = 2, kBytes = 3;  // <0xNN> is kBytes + NN
constexpr int32_t kSpace = 259, kA = 260, kB = 261, kC = 262, kAB = 263, kBC = 264, kSpaceA = 265, kTool = 266,
                  kUnused = 267;

// <unk> <s> </s>, the 256 byte pieces, then normal pieces whose scores rank "bc" above "ab"
// although "ab" has the lower id: a BPE ranked by id would merge "abc" the other way.
struct Vocabulary {
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
    std::vector<float> scores = {0, 0, 0};
    std::vector<int32_t> types = {2, 3, 3};
    Vocabulary() {
        for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), 0, 6);
        add("\xe2\x96\x81", -1, 1);
        add("a", -2, 1);
        add("b", -3, 1);
        add("c", -4, 1);
        add("ab", -10, 1);
        add("bc", -5, 1);
        add("\xe2\x96\x81" "a", -20, 1);
        add("<tool>", 0, 4);
        add("zz", 0, 5);  // unused: "zz" stays two bytes
    }
    void add(const std::string &piece, float score, int32_t type) {
        tokens.push_back(piece);
        scores.push_back(score);
        types.push_back(type);
    }
};

using Adders = std::map<std::string, std::function<void(GgufBuilder &)>>;

Adders vocabulary_keys(const Vocabulary &v) {
    Adders a;
    a["tokenizer.ggml.model"] = [](GgufBuilder &b) { b.add_string("tokenizer.ggml.model", "llama"); };
    a["tokenizer.ggml.tokens"] = [v](GgufBuilder &b) { b.add_string_array("tokenizer.ggml.tokens", v.tokens); };
    a["tokenizer.ggml.scores"] = [v](GgufBuilder &b) { b.add_f32_array("tokenizer.ggml.scores", v.scores); };
    a["tokenizer.ggml.token_type"] = [v](GgufBuilder &b) { b.add_i32_array("tokenizer.ggml.token_type", v.types); };
    a["tokenizer.ggml.unknown_token_id"] = [](GgufBuilder &b) { b.add_u32("tokenizer.ggml.unknown_token_id", kUnk); };
    a["tokenizer.ggml.bos_token_id"] = [](GgufBuilder &b) { b.add_u32("tokenizer.ggml.bos_token_id", kBos); };
    a["tokenizer.ggml.eos_token_id"] = [](GgufBuilder &b) { b.add_u32("tokenizer.ggml.eos_token_id", kEos); };
    return a;
}

// The tokenizer of a GGUF holding `v` with the keys `edit` leaves.
std::unique_ptr<mst::Tokenizer> tokenizer_of(const Vocabulary &v, const std::function<void(Adders &)> &edit = {}) {
    Adders adders = vocabulary_keys(v);
    if (edit) edit(adders);
    GgufBuilder b;
    b.add_string("general.architecture", "llama");
    for (const auto &[key, add] : adders) add(b);
    const std::string bytes = b.build();
    const mst::GgufFile gguf = mst::parse_gguf(
        std::span(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()), "spm.gguf");
    return mst::read_gguf_tokenizer(gguf);
}

std::function<void(Adders &)> set_bool(const std::string &key, bool value) {
    return [key, value](Adders &a) { a[key] = [key, value](GgufBuilder &b) { b.add_bool(key, value); }; };
}

using Ids = std::vector<int32_t>;

TEST(GgufSentencePiece, MergesTheHighestScoringPieceFirst) {
    const auto t = tokenizer_of(Vocabulary());
    EXPECT_EQ(t->kind(), mst::TokenizerKind::SentencePieceBpe);
    // "▁abc": "bc" (-5) beats "ab" (-10), then "▁a" (-20) is the best pair left.
    EXPECT_EQ(t->encode("abc", false), (Ids{kSpaceA, kBC}));
    // "▁ab": "ab" (-10) beats "▁a" (-20), and "▁ab" is no piece.
    EXPECT_EQ(t->encode("ab", false), (Ids{kSpace, kAB}));
    EXPECT_EQ(t->decode(Ids{kSpaceA, kBC}), "abc");
}

TEST(GgufSentencePiece, SpacesBecomeTheMetaSymbolWithOnePrepended) {
    const auto t = tokenizer_of(Vocabulary());
    EXPECT_EQ(t->encode("a b", false), (Ids{kSpaceA, kSpace, kB}));
    EXPECT_EQ(t->decode(Ids{kSpaceA, kSpace, kB}), "a b");
    EXPECT_EQ(t->encode("", false), Ids{});
    const auto no_prefix = tokenizer_of(Vocabulary(), set_bool("tokenizer.ggml.add_space_prefix", false));
    EXPECT_EQ(no_prefix->encode("a b", false), (Ids{kA, kSpace, kB}));
    EXPECT_EQ(no_prefix->decode(Ids{kSpace, kA}), " a");  // nothing to strip: no prefix was added
}

TEST(GgufSentencePiece, MissingCharactersFallBackToBytesOrTheUnknownPiece) {
    const auto t = tokenizer_of(Vocabulary());
    // "é" (C3 A9) has no piece; "zz" is an unused piece, never produced.
    const Ids bytes = {kSpace, kBytes + 0xC3, kBytes + 0xA9, kBytes + 'z', kBytes + 'z'};
    EXPECT_EQ(t->encode("ézz", false), bytes);
    EXPECT_EQ(t->decode(bytes), "ézz");
    Vocabulary no_bytes;
    for (int b = 0; b < 256; ++b) no_bytes.types[size_t(kBytes + b)] = 5;
    EXPECT_EQ(tokenizer_of(no_bytes)->encode("aéé", false), (Ids{kSpaceA, kUnk}));  // one <unk> for the run
}

TEST(GgufSentencePiece, ControlAndUserDefinedPiecesAreMatchedWhole) {
    const auto t = tokenizer_of(Vocabulary());
    // After a piece matched whole, the text goes on with a fresh "▁", as in llama.cpp.
    EXPECT_EQ(t->encode("a</s>b<tool>c", false), (Ids{kSpaceA, kEos, kSpace, kB, kTool, kSpace, kC}));
    EXPECT_TRUE(t->is_special(kEos));
    EXPECT_FALSE(t->is_special(kTool));
    EXPECT_EQ(t->decode(Ids{kSpaceA, kTool}), "a<tool>");
}

TEST(GgufSentencePiece, BosAndEosAsTheMetadataSays) {
    const auto t = tokenizer_of(Vocabulary());
    EXPECT_EQ(t->bos_id(), kBos);
    EXPECT_EQ(t->eos_id(), kEos);
    EXPECT_EQ(t->encode("a"), (Ids{kBos, kSpaceA}));  // add_bos_token defaults to true
    EXPECT_EQ(tokenizer_of(Vocabulary(), set_bool("tokenizer.ggml.add_bos_token", false))->encode("a"),
              Ids{kSpaceA});
    EXPECT_EQ(tokenizer_of(Vocabulary(), set_bool("tokenizer.ggml.add_eos_token", true))->encode("a"),
              (Ids{kBos, kSpaceA, kEos}));
}

TEST(GgufSentencePiece, BrokenVocabulariesAreNamed) {
    const Vocabulary v;
    expect_error([&] { tokenizer_of(v, [](Adders &a) { a.erase("tokenizer.ggml.scores"); }); }, MST_ERR_BAD_FORMAT,
                 {"spm.gguf", "lacks 'tokenizer.ggml.scores'"});
    expect_error(
        [&] {
            tokenizer_of(v, [](Adders &a) {
                a["tokenizer.ggml.scores"] = [](GgufBuilder &b) { b.add_f32_array("tokenizer.ggml.scores", {0, 1}); };
            });
        },
        MST_ERR_BAD_FORMAT, {"tokenizer.ggml.scores has 2 entries", "tokenizer.ggml.tokens 268"});
    expect_error(
        [&] {
            tokenizer_of(v, [&](Adders &a) {
                a["tokenizer.ggml.scores"] = [&](GgufBuilder &b) {
                    b.add_i32_array("tokenizer.ggml.scores", std::vector<int32_t>(v.tokens.size()));
                };
            });
        },
        MST_ERR_BAD_FORMAT, {"'tokenizer.ggml.scores' is not an array of floats"});
    expect_error([&] { tokenizer_of(v, [](Adders &a) { a.erase("tokenizer.ggml.tokens"); }); }, MST_ERR_BAD_FORMAT,
                 {"lacks 'tokenizer.ggml.tokens'"});
    Vocabulary bad_type;
    bad_type.types[kC] = 7;
    expect_error([&] { tokenizer_of(bad_type); }, MST_ERR_BAD_FORMAT,
                 {"tokenizer.ggml.token_type[262] is 7", "not a llama.cpp token type"});
    Vocabulary duplicate;
    duplicate.tokens[kAB] = "bc";
    expect_error([&] { tokenizer_of(duplicate); }, MST_ERR_BAD_FORMAT, {"tokens[264] 'bc' is already token 263"});
    expect_error([&] { tokenizer_of(v, [](Adders &a) { a.erase("tokenizer.ggml.bos_token_id"); }); },
                 MST_ERR_BAD_FORMAT, {"tokenizer.ggml.add_bos_token is set but tokenizer.ggml.bos_token_id is missing"});
    expect_error(
        [&] {
            tokenizer_of(v, [](Adders &a) {
                a["tokenizer.ggml.unknown_token_id"] = [](GgufBuilder &b) {
                    b.add_u32("tokenizer.ggml.unknown_token_id", 5000);
                };
            });
        },
        MST_ERR_BAD_FORMAT, {"tokenizer.ggml.unknown_token_id is 5000", "268 tokens"});
}

// mixtral_tiny written with a SentencePiece vocabulary (gguf_model_writer.h) in place of its
// byte-level one loads through the C API, tokenizes and detokenizes by the vocabulary's
// rules, and still computes the reference logits of the golden ids (the vocabulary changes
// no weight).
TEST(GgufSentencePiece, MixtralGgufWithASentencePieceVocabularyLoadsAndRuns) {
    const std::string data = mst::test::data_path("mixtral_tiny");
    const std::string dir = mst::test::make_temp_dir("gguf_spm_mixtral");
    const std::string path = dir + "/mixtral_spm.gguf";
    mst::test::write_mixtral_gguf_sentencepiece(data, path, mst::test::GgufWeightType::F32);
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    p.expert_cache_bytes = 0;
    const mst::ModelHandle model(path, p);
    EXPECT_STREQ(model.info().architecture, "mixtral");
    EXPECT_NE(std::string(model.info().tokenizer_kind).find("SentencePiece"), std::string::npos)
        << model.info().tokenizer_kind;
    // <s>, "▁the", "▁", "c", "a", "t": the letters follow "▁" (259) in the writer's order.
    constexpr int32_t kMeta = 259, kLetters = 260, kSpaceThe = 288;
    const Ids ids = model.tokenize("the cat");
    EXPECT_EQ(ids, (Ids{kBos, kSpaceThe, kMeta, kLetters + 2, kLetters + 0, kLetters + 19}));
    EXPECT_EQ(model.detokenize(Ids(ids.begin() + 1, ids.end())), "the cat");

    const mst::test::Golden golden = mst::test::load_golden(data + "/golden.safetensors");
    const std::vector<float> got = mst::test::prompt_logits(model, golden.input_ids);
    const std::vector<float> &want = golden.logits();
    ASSERT_EQ(got.size(), want.size());
    EXPECT_LT(mst::test::relative_error(got.data(), want.data(), int64_t(want.size())), 1e-5);
    std::filesystem::remove_all(dir);
}

}  // namespace
