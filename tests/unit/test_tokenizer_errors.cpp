// Every way loading or using a tokenizer can fail: the status code and a message that
// names the file and the problem. Nothing here may crash.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "test_paths.h"
#include "test_tokenizer_support.h"
#include "tokenizer/tokenizer.h"

namespace {

using mst::Tokenizer;
using mst::test::HandMade;

const std::string kOrigin = "test/tokenizer.json";

// Runs f, which must throw mst::Error with `code` and a message containing every part.
template <typename F>
void expect_error(F &&f, mst_status code, std::vector<std::string> parts) {
    try {
        f();
        ADD_FAILURE() << "no error thrown; expected status " << code;
    } catch (const mst::Error &e) {
        EXPECT_EQ(e.code(), code) << e.what();
        for (const std::string &part : parts)
            EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
                << "\"" << e.what() << "\" lacks \"" << part << "\"";
    }
}

void expect_load_error(const HandMade &h, mst_status code, std::vector<std::string> parts,
                       const std::string &config = "") {
    parts.push_back(kOrigin);
    expect_error([&] { Tokenizer::from_strings(h.str(), config, kOrigin); }, code, parts);
}

TEST(TokenizerErrors, MalformedJson) {
    for (const char *text : {"{", "", "[1, 2", "{\"model\": }", "nul", "\"just a string\"", "[]"})
        expect_error([&] { Tokenizer::from_strings(text, "", kOrigin); }, MST_ERR_BAD_FORMAT, {kOrigin});
}

TEST(TokenizerErrors, MissingModel) {
    HandMade h;
    h.doc.erase("model");
    expect_load_error(h, MST_ERR_BAD_FORMAT, {"model"});
    h.doc["model"] = nullptr;
    expect_load_error(h, MST_ERR_BAD_FORMAT, {"model"});
}

TEST(TokenizerErrors, MalformedModelFields) {
    HandMade h;
    h.doc["model"].erase("vocab");
    expect_load_error(h, MST_ERR_BAD_FORMAT, {"vocab"});

    HandMade bad_id;
    bad_id.doc["model"]["vocab"]["x"] = "seven";
    expect_load_error(bad_id, MST_ERR_BAD_FORMAT, {"vocab", "x"});

    HandMade negative;
    negative.doc["model"]["vocab"]["x"] = -3;
    expect_load_error(negative, MST_ERR_BAD_FORMAT, {"-3"});

    HandMade huge_id;
    huge_id.doc["model"]["vocab"]["x"] = 2000000000;
    expect_load_error(huge_id, MST_ERR_BAD_FORMAT, {"2000000000"});

    HandMade merge_unknown({{"a", "b"}});
    merge_unknown.doc["model"]["merges"].push_back({"a", "zz"});
    expect_load_error(merge_unknown, MST_ERR_BAD_FORMAT, {"merges[1]", "zz"});

    HandMade merge_shape({{"a", "b"}});
    merge_shape.doc["model"]["merges"] = {"a b c"};
    expect_load_error(merge_shape, MST_ERR_BAD_FORMAT, {"merges[0]"});

    HandMade merge_type;
    merge_type.doc["model"]["merges"] = {42};
    expect_load_error(merge_type, MST_ERR_BAD_FORMAT, {"merges[0]"});

    HandMade flag_type;
    flag_type.doc["model"]["ignore_merges"] = "yes";
    expect_load_error(flag_type, MST_ERR_BAD_FORMAT, {"ignore_merges"});
}

TEST(TokenizerErrors, MalformedAddedTokens) {
    HandMade h;
    h.doc["added_tokens"] = {{{"content", "<x>"}}};
    expect_load_error(h, MST_ERR_BAD_FORMAT, {"added_tokens[0]", "id"});
    h.doc["added_tokens"] = {{{"id", 300}}};
    expect_load_error(h, MST_ERR_BAD_FORMAT, {"added_tokens[0]", "content"});
    h.doc["added_tokens"] = "none";
    expect_load_error(h, MST_ERR_BAD_FORMAT, {"added_tokens"});
}

TEST(TokenizerErrors, UnsupportedComponents) {
    HandMade pre;
    pre.doc["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
    expect_load_error(pre, MST_ERR_UNSUPPORTED, {"BertPreTokenizer"});

    HandMade nested;
    nested.doc["pre_tokenizer"] = {{"type", "Sequence"},
                                   {"pretokenizers", {{{"type", "ByteLevel"}}, {{"type", "WhitespaceSplit"}}}}};
    expect_load_error(nested, MST_ERR_UNSUPPORTED, {"WhitespaceSplit", "pretokenizers[1]"});

    HandMade norm;
    norm.doc["normalizer"] = {{"type", "Lowercase"}};
    expect_load_error(norm, MST_ERR_UNSUPPORTED, {"Lowercase"});

    HandMade model;
    model.doc["model"]["type"] = "WordPiece";
    expect_load_error(model, MST_ERR_UNSUPPORTED, {"WordPiece"});

    HandMade dropout;
    dropout.doc["model"]["dropout"] = 0.1;
    expect_load_error(dropout, MST_ERR_UNSUPPORTED, {"dropout"});

    HandMade decoder;
    decoder.doc["decoder"] = {{"type", "WordPiece"}};
    expect_load_error(decoder, MST_ERR_UNSUPPORTED, {"decoder", "WordPiece"});

    HandMade no_decoder;
    no_decoder.doc["decoder"] = nullptr;
    expect_load_error(no_decoder, MST_ERR_UNSUPPORTED, {"decoder"});

    HandMade post;
    post.doc["post_processor"] = {{"type", "SomethingNew"}};
    expect_load_error(post, MST_ERR_UNSUPPORTED, {"SomethingNew"});

    HandMade regex;
    regex.doc["pre_tokenizer"] = {
        {"type", "Split"}, {"pattern", {{"Regex", "[[a-z]b]+"}}}, {"behavior", "Isolated"}};
    expect_load_error(regex, MST_ERR_UNSUPPORTED, {"[[a-z]b]+", "nested character class"});
}

TEST(TokenizerErrors, BadSplitPattern) {
    HandMade h;
    h.doc["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
    expect_load_error(h, MST_ERR_BAD_FORMAT, {"(unclosed"});
    h.doc["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Glob", "*"}}}, {"behavior", "Isolated"}};
    expect_load_error(h, MST_ERR_BAD_FORMAT, {"pattern"});
    h.doc["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}};
    expect_load_error(h, MST_ERR_BAD_FORMAT, {"Sideways"});
}

TEST(TokenizerErrors, ConfigProblems) {
    HandMade h;
    const std::string config_origin = kOrigin + " (tokenizer_config)";
    expect_error([&] { Tokenizer::from_strings(h.str(), "{not json", kOrigin); }, MST_ERR_BAD_FORMAT, {config_origin});
    expect_error([&] { Tokenizer::from_strings(h.str(), R"({"eos_token": "<nope>"})", kOrigin); }, MST_ERR_BAD_FORMAT,
                 {config_origin, "<nope>"});
    expect_error([&] { Tokenizer::from_strings(h.str(), R"({"eos_token": 5})", kOrigin); }, MST_ERR_BAD_FORMAT,
                 {config_origin, "eos_token"});
    expect_error([&] { Tokenizer::from_strings(h.str(), R"({"bos_token": {"text": "<s>"}})", kOrigin); },
                 MST_ERR_BAD_FORMAT, {config_origin, "content"});
}

TEST(TokenizerErrors, MissingFilesNameThePath) {
    const std::string missing = mst::test::data_path("tokenizer/no_such_tokenizer.json");
    expect_error([&] { Tokenizer::load(missing, ""); }, MST_ERR_IO, {missing});
    // A config path that exists but cannot be read as a file.
    const std::string dir = mst::test::data_path("tokenizer");
    expect_error([&] { Tokenizer::load(dir + "/tokenizer.json", dir); }, MST_ERR_IO, {dir});
}

TEST(TokenizerErrors, DecodeOutOfRange) {
    HandMade h;
    const auto tok = Tokenizer::from_strings(h.str(), "", kOrigin);
    const std::vector<int32_t> too_big{'a', 99999};
    expect_error([&] { tok->decode(too_big); }, MST_ERR_INVALID_ARGUMENT, {"99999"});
    const std::vector<int32_t> negative{-1};
    expect_error([&] { tok->decode(negative); }, MST_ERR_INVALID_ARGUMENT, {"-1"});
    expect_error([&] { tok->token_bytes(256); }, MST_ERR_INVALID_ARGUMENT, {"256"});
    expect_error([&] { tok->token_text(-7); }, MST_ERR_INVALID_ARGUMENT, {"-7"});
}

TEST(TokenizerErrors, IdGapIsNotAToken) {
    HandMade h;
    const int32_t far = h.add_token("<far>", true);
    h.doc["added_tokens"][0]["id"] = 400;
    ASSERT_EQ(far, 256);
    const auto tok = Tokenizer::from_strings(h.str(), "", kOrigin);
    EXPECT_EQ(tok->vocab_size(), 401);
    expect_error([&] { tok->token_text(300); }, MST_ERR_INVALID_ARGUMENT, {"300"});
    EXPECT_EQ(tok->token_text(400), "<far>");
}

TEST(TokenizerErrors, MissingUnkTokenFailsWhenNeeded) {
    HandMade h;
    h.doc["pre_tokenizer"] = nullptr;
    h.doc["model"]["vocab"] = {{"a", 0}};
    h.doc["model"]["merges"] = nlohmann::json::array();
    h.doc["model"]["unk_token"] = "<unk>";
    const auto tok = Tokenizer::from_strings(h.str(), "", kOrigin);
    EXPECT_EQ(tok->encode("aa"), (std::vector<int32_t>{0, 0}));
    expect_error([&] { tok->encode("ab"); }, MST_ERR_BAD_FORMAT, {kOrigin, "<unk>"});
}

}  // namespace

namespace {

// Every JSON pointer in doc, skipping the bulk of vocab and merges so that the other
// fields get most of the damage.
void collect_pointers(const nlohmann::json &value, const nlohmann::json::json_pointer &at,
                      std::vector<nlohmann::json::json_pointer> &out) {
    out.push_back(at);
    size_t seen = 0;
    if (value.is_object()) {
        for (const auto &[key, child] : value.items())
            if (seen++ < 8) collect_pointers(child, at / key, out);
    } else if (value.is_array()) {
        for (size_t i = 0; i < value.size() && i < 8; ++i) collect_pointers(value[i], at / i, out);
    }
}

TEST(TokenizerErrors, DamagedFilesNeverCrash) {
    std::ifstream in(mst::test::data_path("tokenizer/tokenizer.json"), std::ios::binary);
    ASSERT_TRUE(in.good());
    std::ostringstream text;
    text << in.rdbuf();
    const nlohmann::json original = nlohmann::json::parse(text.str());
    std::vector<nlohmann::json::json_pointer> pointers;
    collect_pointers(original, nlohmann::json::json_pointer(), pointers);
    const nlohmann::json replacements[] = {nullptr, 0, -1, 3.5, "", "x", true, nlohmann::json::array(),
                                           nlohmann::json::object(), nlohmann::json::array({1, "a"}),
                                           nlohmann::json::object({{"type", "Split"}})};
    std::mt19937 rng(17);
    int loaded = 0, refused = 0;
    for (int round = 0; round < 400; ++round) {
        nlohmann::json damaged = original;
        const auto &where = pointers[rng() % pointers.size()];
        const nlohmann::json &with = replacements[rng() % std::size(replacements)];
        if (where.empty()) damaged = with;
        else damaged[where] = with;
        std::string serialized = damaged.dump();
        if (round % 4 == 3) serialized.resize(rng() % serialized.size());  // a truncated file too
        try {
            const auto tok = Tokenizer::from_strings(serialized, "", kOrigin);
            const std::vector<int32_t> ids = tok->encode("Hello <|im_start|> wörld 123\n");
            tok->decode(ids);
            ++loaded;
        } catch (const mst::Error &e) {
            EXPECT_NE(std::string(e.what()).find(kOrigin), std::string::npos) << e.what();
            ++refused;
        } catch (const std::exception &e) {
            ADD_FAILURE() << "a damaged file escaped as a non-mst exception: " << e.what() << " at "
                          << where.to_string();
        }
    }
    EXPECT_GT(refused, 0);
    EXPECT_GT(loaded, 0);
}

TEST(TokenizerErrors, RandomBytesEncodeWithoutCrashing) {
    const auto tok = Tokenizer::load(mst::test::data_path("tokenizer/tokenizer.json"), "");
    std::mt19937 rng(23);
    for (int round = 0; round < 300; ++round) {
        std::string bytes(rng() % 200, '\0');
        for (char &c : bytes) c = static_cast<char>(rng() % 256);
        const std::vector<int32_t> ids = tok->encode(bytes);
        // The decoded text is the repaired, normalized input: encoding it again changes nothing.
        const std::string back = tok->decode(ids);
        EXPECT_EQ(tok->encode(back), ids);
        EXPECT_EQ(back.empty(), bytes.empty());
    }
}

}  // namespace
