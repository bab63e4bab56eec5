// tiktoken checkpoints: the rank file's format and every way it can be wrong, the merge
// rule (against a plain transcription of tiktoken's quadratic loop), Kimi's special-token
// layout, and how a checkpoint directory is recognised. The real rank files are checked
// against js-tiktoken in test_tokenizer_reference.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "expect_error.h"
#include "moestream.h"
#include "test_paths.h"
#include "tokenizer/base64.h"
#include "tokenizer/tiktoken_ranks.h"
#include "tokenizer/tiktoken_specials.h"
#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using mst::Tokenizer;
using mst::test::expect_error;
using Ids = std::vector<int32_t>;

// Base64 written here on its own, so rank files are not made by the code under test.
std::string encode64(const std::string &bytes) {
    static const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (size_t i = 0; i < bytes.size(); i += 3) {
        uint32_t group = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
        if (i + 1 < bytes.size()) group |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
        if (i + 2 < bytes.size()) group |= static_cast<unsigned char>(bytes[i + 2]);
        out += alphabet[(group >> 18) & 63];
        out += alphabet[(group >> 12) & 63];
        out += i + 1 < bytes.size() ? alphabet[(group >> 6) & 63] : '=';
        out += i + 2 < bytes.size() ? alphabet[group & 63] : '=';
    }
    return out;
}

// The 256 single bytes at ranks 0..255, then `merged` at 256.. in order.
std::vector<std::string> byte_ranks(const std::vector<std::string> &merged) {
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) tokens.emplace_back(1, static_cast<char>(b));
    tokens.insert(tokens.end(), merged.begin(), merged.end());
    return tokens;
}

std::string rank_file(const std::vector<std::string> &tokens) {
    std::string out;
    for (size_t r = 0; r < tokens.size(); ++r) out += encode64(tokens[r]) + " " + std::to_string(r) + "\n";
    return out;
}

// tiktoken's merge loop as its Python/Rust sources describe it: merge the adjacent pair
// whose concatenation has the lowest rank, the leftmost of equals, until none is a token.
std::vector<int32_t> plain_bpe(const std::string &word, const std::map<std::string, int32_t> &ranks) {
    if (ranks.count(word)) return {ranks.at(word)};
    std::vector<std::string> parts;
    for (char c : word) parts.emplace_back(1, c);
    for (;;) {
        size_t best = parts.size();
        int32_t best_rank = 0;
        for (size_t i = 0; i + 1 < parts.size(); ++i) {
            const auto it = ranks.find(parts[i] + parts[i + 1]);
            if (it != ranks.end() && (best == parts.size() || it->second < best_rank)) {
                best = i;
                best_rank = it->second;
            }
        }
        if (best == parts.size()) break;
        parts[best] += parts[best + 1];
        parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    std::vector<int32_t> ids;
    for (const std::string &p : parts) ids.push_back(ranks.at(p));
    return ids;
}

std::unique_ptr<Tokenizer> whole_text_tokenizer(const std::vector<std::string> &tokens) {
    // ".+" keeps a newline-free text as one word, so the merge rule alone decides the ids.
    return Tokenizer::tiktoken_from_strings(rank_file(tokens), ".+", {}, "", "test.tiktoken");
}

TEST(Base64, DecodesRfc4648Vectors) {
    const std::map<std::string, std::string> vectors = {
        {"Zg==", "f"}, {"Zm8=", "fo"}, {"Zm9v", "foo"}, {"Zm9vYg==", "foob"}, {"Zm9vYmE=", "fooba"}, {"Zm9vYmFy", "foobar"},
        {"/w==", "\xFF"}, {"+/+/", "\xFB\xFF\xBF"}, {"AAAA", std::string(3, '\0')}};
    for (const auto &[text, bytes] : vectors) {
        std::string why;
        const auto decoded = mst::base64::decode(text, &why);
        ASSERT_TRUE(decoded) << text << ": " << why;
        EXPECT_EQ(*decoded, bytes) << text;
        EXPECT_EQ(encode64(bytes), text);
    }
}

TEST(Base64, RefusesWhatIsNotCanonicalBase64) {
    for (const auto &[text, reason] : std::vector<std::pair<std::string, std::string>>{
             {"", "empty"}, {"Zm9", "multiple of 4"}, {"Zm9v!A==", "'!' at character 4"}, {"Z=9v", "not trailing"},
             {"Zm==Zm9v", "not trailing"}, {"Zh==", "padding bits"}, {"Zm9=", "padding bits"}, {"Zm\x01v", "byte 0x01"},
             {"Zg=A", "follows padding"}}) {
        std::string why;
        EXPECT_FALSE(mst::base64::decode(text, &why)) << text;
        EXPECT_NE(why.find(reason), std::string::npos) << text << ": " << why;
    }
}

TEST(TiktokenRanks, ParsesLinesInAnyOrderWithCrLfAndBlankLines) {
    const std::string file = encode64("b") + " 1\r\n\n" + encode64("a") + " 0\n" + encode64("ab") + " 2";
    EXPECT_EQ(mst::parse_tiktoken_ranks(file, "f"), (std::vector<std::string>{"a", "b", "ab"}));
}

TEST(TiktokenRanks, NamesEachDefect) {
    const std::string ok = rank_file({"a", "b", "ab"});
    const auto expect_bad = [](const std::string &text, std::initializer_list<std::string_view> parts) {
        expect_error([&] { mst::parse_tiktoken_ranks(text, "ranks.tiktoken"); }, MST_ERR_BAD_FORMAT, parts);
    };
    // A file cut in the middle of its last line.
    expect_bad(ok.substr(0, ok.size() - 3), {"ranks.tiktoken", "line 3", "truncated"});
    expect_bad(ok + "YWJj\n", {"line 4", "has no rank"});
    expect_bad("YQ== 0\nY*== 1\n", {"line 2", "base64", "'*'"});
    expect_bad("YQ== 0\nYg= 1\n", {"line 2", "base64", "multiple of 4"});
    expect_bad("YQ== 0\nYg== 1\nYWI= 3\n", {"rank 2 is missing", "0..2"});
    expect_bad("YQ== 0\nYg== 1\nYWI= 1\n", {"rank 1 appears twice", "lines 2 and 3"});
    expect_bad("YQ== 0\nYQ== 1\n", {"lines 1 and 2", "same token"});
    expect_bad("YQ== zero\n", {"line 1", "\"zero\"", "not a non-negative integer"});
    expect_bad("YQ== -1\n", {"line 1", "\"-1\""});
    expect_bad("YQ== 0 extra\n", {"line 1", "more than two fields"});
    expect_bad("YQ== 99999999999\n", {"line 1", "implausibly large"});
    expect_bad("\n\n", {"no tokens"});
}

TEST(TiktokenRanks, EveryByteMustHaveARank) {
    std::vector<std::string> tokens = byte_ranks({});
    tokens.erase(tokens.begin() + 0x41);
    tokens.push_back("A");  // 'A' is now rank 255; the byte 0xFF... is still there
    tokens.erase(tokens.begin() + 200);
    expect_error([&] { whole_text_tokenizer(tokens); }, MST_ERR_BAD_FORMAT, {"test.tiktoken", "0xC9", "no rank"});
}

TEST(TiktokenMerge, LowestRankFirstLeftmostOfEquals) {
    // "aaa": "aa" could form at 0 or 1; the leftmost wins, then "a" is left: [aa, a].
    // "abcde": "bc" outranks "ab" and "cd", so "abcd" (only reachable through ab+cd) never forms.
    const auto tokenizer = whole_text_tokenizer(byte_ranks({"bc", "aa", "ab", "cd", "abcd"}));
    EXPECT_EQ(tokenizer->encode("aaa"), (std::vector<int32_t>{257, 'a'}));
    EXPECT_EQ(tokenizer->encode("abcde"), (std::vector<int32_t>{'a', 256, 'd', 'e'}));
    // A word that is itself a token is that token even where merges could not reach it.
    const auto direct = whole_text_tokenizer(byte_ranks({"xyz"}));
    EXPECT_EQ(direct->encode("xyz"), (std::vector<int32_t>{256}));
    EXPECT_EQ(direct->encode("xyzx"), (std::vector<int32_t>{'x', 'y', 'z', 'x'}));
}

TEST(TiktokenMerge, AgreesWithThePlainLoopOnRandomWords) {
    std::mt19937 rng(7);
    const std::string alphabet = "abcd\xC3\xA9";
    std::vector<std::string> merged;
    std::map<std::string, int32_t> ranks;
    for (int b = 0; b < 256; ++b) ranks[std::string(1, static_cast<char>(b))] = b;
    // Random tokens built from pairs of earlier ones, as BPE training builds them.
    std::vector<std::string> pool;
    for (char c : alphabet) pool.emplace_back(1, c);
    while (merged.size() < 300) {
        std::string t = pool[rng() % pool.size()] + pool[rng() % pool.size()];
        if (ranks.count(t)) continue;
        ranks[t] = static_cast<int32_t>(256 + merged.size());
        merged.push_back(t);
        pool.push_back(t);
    }
    const auto tokenizer = whole_text_tokenizer(byte_ranks(merged));
    for (int k = 0; k < 3000; ++k) {
        std::string word;
        const size_t length = 1 + rng() % 40;
        for (size_t i = 0; i < length; ++i) word += alphabet[rng() % 4];
        ASSERT_EQ(tokenizer->encode(word), plain_bpe(word, ranks)) << word;
    }
}

// A tiny checkpoint in Kimi's layout: 256 byte ranks and four merges (n = 260), special
// tokens at 260..515 of which added_tokens_decoder names three.
struct KimiFiles {
    std::string ranks = rank_file(byte_ranks({"he", "ll", "llo", "hello"}));
    nlohmann::json config = {
        {"added_tokens_decoder",
         {{"260", {{"content", "[BOS]"}, {"special", true}}},
          {"261", {{"content", "[EOS]"}, {"special", true}}},
          {"263", {{"content", "<|im_end|>"}, {"special", true}}}}},
        {"bos_token", "[BOS]"},
        {"eos_token", {{"content", "[EOS]"}}}};
    std::unique_ptr<Tokenizer> load() const {
        return Tokenizer::kimi_tiktoken_from_strings(ranks, config.dump(), "kimi/tiktoken.model");
    }
};

TEST(KimiTiktoken, SpecialTokensAfterTheRanks) {
    const auto tokenizer = KimiFiles().load();
    EXPECT_EQ(tokenizer->kind(), mst::TokenizerKind::Tiktoken);
    EXPECT_STREQ(mst::tokenizer_kind_name(tokenizer->kind()), "tiktoken");
    EXPECT_EQ(tokenizer->vocab_size(), 260 + mst::kKimiReservedSpecialTokens);
    EXPECT_EQ(tokenizer->bos_id(), 260);
    EXPECT_EQ(tokenizer->eos_id(), 261);
    EXPECT_EQ(tokenizer->token_id("<|reserved_token_262|>"), 262);
    EXPECT_EQ(tokenizer->token_id("<|reserved_token_515|>"), 515);
    EXPECT_FALSE(tokenizer->token_id("<|reserved_token_516|>"));
    EXPECT_TRUE(tokenizer->is_special(263));
    EXPECT_FALSE(tokenizer->is_special(259));
    EXPECT_EQ(tokenizer->token_text(259), "hello");
    EXPECT_EQ(tokenizer->token_id("hello"), 259);
    // The specials are found inside text; the rest is split by Kimi's pattern and merged.
    const std::vector<int32_t> ids = tokenizer->encode("[BOS]hello 中<|im_end|>x<|reserved_token_300|>");
    const std::vector<int32_t> expected = {260, 259, ' ', 0xE4, 0xB8, 0xAD, 263, 'x', 300};
    EXPECT_EQ(ids, expected);
    EXPECT_EQ(tokenizer->decode(ids), "[BOS]hello 中<|im_end|>x<|reserved_token_300|>");
    EXPECT_EQ(tokenizer->token_bytes(263), "<|im_end|>");
    EXPECT_EQ(tokenizer->token_bytes(0xE4), "\xE4");
}

TEST(KimiTiktoken, SpecialTokenClashesAreNamed) {
    KimiFiles clash_rank;
    clash_rank.config["added_tokens_decoder"]["100"] = {{"content", "<|x|>"}};
    expect_error([&] { clash_rank.load(); }, MST_ERR_BAD_FORMAT,
                 {"kimi/tiktoken.model (tokenizer_config)", "<|x|>", "id 100", "clashes with rank 100"});
    KimiFiles same_content;
    same_content.config["added_tokens_decoder"]["262"] = {{"content", "[EOS]"}};
    expect_error([&] { same_content.load(); }, MST_ERR_BAD_FORMAT, {"\"[EOS]\"", "two ids, 261 and 262"});
    KimiFiles reserved_name;
    reserved_name.config["added_tokens_decoder"]["264"] = {{"content", "<|reserved_token_300|>"}};
    expect_error([&] { reserved_name.load(); }, MST_ERR_BAD_FORMAT, {"<|reserved_token_300|>", "264 and 300"});
    std::vector<mst::AddedToken> twice(2);
    twice[0].content = "<a>";
    twice[1].content = "<b>";
    twice[0].id = twice[1].id = 256;
    expect_error([&] { Tokenizer::tiktoken_from_strings(rank_file(byte_ranks({})), ".+", twice, "", "t.tiktoken"); },
                 MST_ERR_BAD_FORMAT, {"t.tiktoken", "\"<a>\" and \"<b>\" clash on id 256"});
    KimiFiles bad_key;
    bad_key.config["added_tokens_decoder"]["x1"] = {{"content", "<|x|>"}};
    expect_error([&] { bad_key.load(); }, MST_ERR_BAD_FORMAT, {"\"x1\" is not a token id"});
    KimiFiles no_content;
    no_content.config["added_tokens_decoder"]["270"] = {{"special", true}};
    expect_error([&] { no_content.load(); }, MST_ERR_BAD_FORMAT, {"added_tokens_decoder[\"270\"]", "content"});
    KimiFiles unknown_eos;
    unknown_eos.config["eos_token"] = "<|nope|>";
    expect_error([&] { unknown_eos.load(); }, MST_ERR_BAD_FORMAT, {"eos_token", "<|nope|>"});
}

TEST(KimiTiktoken, BadConfigAndRanksAreNamed) {
    KimiFiles files;
    expect_error([&] { Tokenizer::kimi_tiktoken_from_strings(files.ranks, "{not json", "k/tiktoken.model"); },
                 MST_ERR_BAD_FORMAT, {"k/tiktoken.model (tokenizer_config)", "not valid JSON"});
    // Cut just before a line's rank, as a download that stopped there leaves it.
    const std::string cut = files.ranks.substr(0, files.ranks.find(' ', 100));
    expect_error([&] { Tokenizer::kimi_tiktoken_from_strings(cut, "{}", "k/tiktoken.model"); }, MST_ERR_BAD_FORMAT,
                 {"k/tiktoken.model", "truncated"});
}

void write(const fs::path &path, const std::string &text) {
    std::ofstream(path, std::ios::binary) << text;
}

TEST(TokenizerDir, RecognisesTiktokenModelWithItsConfig) {
    const fs::path dir = mst::test::make_temp_dir("kimi_tok");
    KimiFiles files;
    write(dir / "tiktoken.model", files.ranks);
    expect_error([&] { Tokenizer::load_dir(dir.string()); }, MST_ERR_IO,
                 {dir.string(), "tiktoken.model", "no tokenizer_config.json"});
    write(dir / "tokenizer_config.json", files.config.dump());
    const auto tokenizer = Tokenizer::load_dir(dir.string());
    EXPECT_EQ(tokenizer->kind(), mst::TokenizerKind::Tiktoken);
    EXPECT_EQ(tokenizer->eos_id(), 261);
    write(dir / "tiktoken.model", files.ranks + "Zm9v 7\n");
    expect_error([&] { Tokenizer::load_dir(dir.string()); }, MST_ERR_BAD_FORMAT,
                 {(dir / "tiktoken.model").string(), "rank 7 appears twice"});
    fs::remove_all(dir);
    const fs::path empty = mst::test::make_temp_dir("no_tok");
    expect_error([&] { Tokenizer::load_dir(empty.string()); }, MST_ERR_IO,
                 {empty.string(), "neither tokenizer.json nor tiktoken.model"});
    fs::remove_all(empty);
}

// Kimi K2 as Moonshot ships it: the tiny Kimi checkpoint's weights and config with
// tiktoken.model and tokenizer_config.json instead of tokenizer.json, through the C API.
TEST(TokenizerDir, KimiCheckpointLoadsThroughTheCApi) {
    const fs::path dir = mst::test::make_temp_dir("kimi_tiktoken_model");
    for (const char *file : {"config.json", "model.safetensors"})
        fs::copy_file(fs::path(mst::test::data_path("kimi_k2_tiny")) / file, dir / file);
    KimiFiles files;
    write(dir / "tiktoken.model", files.ranks);
    write(dir / "tokenizer_config.json", files.config.dump());
    mst_model *model = nullptr;
    ASSERT_EQ(mst_model_load(dir.string().c_str(), nullptr, &model), MST_OK) << mst_last_error();
    const std::string text = "hello<|im_end|>";
    int32_t ids[16];
    size_t n = 0;
    ASSERT_EQ(mst_tokenize(model, text.data(), text.size(), ids, 16, &n), MST_OK) << mst_last_error();
    EXPECT_EQ(Ids(ids, ids + n), (Ids{259, 263}));
    char out[64];
    size_t bytes = 0;
    ASSERT_EQ(mst_detokenize(model, ids, n, out, sizeof out, &bytes), MST_OK) << mst_last_error();
    EXPECT_EQ(std::string(out, bytes), text);
    EXPECT_STREQ(mst_token_text(model, 260), "[BOS]");
    EXPECT_STREQ(mst_tokenizer_kind(model), "tiktoken");
    EXPECT_EQ(mst_tokenizer_kind(nullptr), nullptr);
    mst_model_free(model);
    fs::remove_all(dir);
}

TEST(TokenizerDir, TokenizerJsonWinsAndIsByteLevel) {
    const auto tokenizer = Tokenizer::load_dir(mst::test::data_path("tokenizer"));
    EXPECT_EQ(tokenizer->kind(), mst::TokenizerKind::ByteLevelBpe);
}

}  // namespace
