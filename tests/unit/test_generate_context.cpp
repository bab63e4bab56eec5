// mst_generate never loses a token: whatever stops generation (a callback, a stop string,
// an end-of-sequence id from any of the files that name them, the token limit, a full
// context), every token the callback saw is in the session afterwards, every callback
// gets a real token id, and the pieces add up to the whole text.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "moestream.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

struct Seen {
    std::vector<int32_t> ids;
    std::string text;
    int stop_after = 0;  // > 0: the callback asks to stop at this call
};

int record(int32_t token, const char *piece, size_t len, void *user) {
    auto *seen = static_cast<Seen *>(user);
    seen->ids.push_back(token);
    seen->text.append(piece, len);
    return seen->stop_after > 0 && int(seen->ids.size()) == seen->stop_after;
}

class GenerateContext : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = mst::test::make_temp_dir("mst_generate_ctx_");
        ASSERT_FALSE(dir_.empty());
        fs::copy(mst::test::data_path("qwen3_moe_tiny"), dir_, fs::copy_options::recursive);
    }
    void TearDown() override {
        mst_session_free(session_);
        mst_model_free(model_);
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    void open(uint32_t n_ctx = 0) {
        mst_session_free(session_);
        session_ = nullptr;
        if (!model_) {
            ASSERT_EQ(mst_model_load(dir_.c_str(), nullptr, &model_), MST_OK) << mst_last_error();
        }
        mst_session_params sp;
        mst_session_default_params(&sp);
        sp.n_ctx = n_ctx;
        ASSERT_EQ(mst_session_create(model_, &sp, &session_), MST_OK) << mst_last_error();
    }

    // ignore_eos unless a test is about end-of-sequence ids, so that a random model's
    // greedy text cannot end early.
    mst_stop_reason run(Seen &seen, int32_t max_tokens, const std::vector<const char *> &stops = {},
                        bool ignore_eos = true) {
        mst_generate_params gp;
        mst_generate_default_params(&gp);
        gp.max_tokens = max_tokens;
        gp.sampler.temperature = 0.0f;  // greedy: the same tokens every run
        gp.stop = stops.empty() ? nullptr : stops.data();
        gp.n_stop = stops.size();
        gp.ignore_eos = ignore_eos ? 1 : 0;
        mst_stop_reason reason = MST_STOP_NONE;
        EXPECT_EQ(mst_generate(session_, prompt_.data(), prompt_.size(), &gp, &record, &seen, &reason), MST_OK)
            << mst_last_error();
        return reason;
    }

    std::string dir_;
    mst_model *model_ = nullptr;
    mst_session *session_ = nullptr;
    const std::vector<int32_t> prompt_{5, 6, 7, 8};
};

TEST_F(GenerateContext, TokenShownToAStoppingCallbackIsInTheContext) {
    open();
    Seen seen;
    seen.stop_after = 3;
    EXPECT_EQ(run(seen, 10), MST_STOP_CALLBACK);
    EXPECT_EQ(seen.ids.size(), 3u);
    EXPECT_EQ(mst_session_n_past(session_), prompt_.size() + 3);
}

TEST_F(GenerateContext, StopStringTokensAreInTheContext) {
    open();
    Seen all;
    ASSERT_EQ(run(all, 8), MST_STOP_MAX_TOKENS);
    ASSERT_EQ(all.ids.size(), 8u);
    // A stop string that the greedy run completes in the middle of its text.
    ASSERT_GE(all.text.size(), 4u);
    const std::string stop = all.text.substr(all.text.size() / 2, 2);
    const size_t stop_at = all.text.find(stop);

    open();
    Seen seen;
    EXPECT_EQ(run(seen, 8, {stop.c_str()}), MST_STOP_STRING);
    EXPECT_EQ(seen.text, all.text.substr(0, stop_at));
    EXPECT_LE(seen.ids.size(), all.ids.size());
    EXPECT_EQ(mst_session_n_past(session_), prompt_.size() + seen.ids.size());
}

TEST_F(GenerateContext, HeldBackTextArrivesWithTheLastTokenNeverWithIdMinusOne) {
    open();
    Seen all;
    ASSERT_EQ(run(all, 6), MST_STOP_MAX_TOKENS);
    ASSERT_FALSE(all.text.empty());
    // A stop string that begins with the text's last byte but never completes: that
    // byte is held back until generation ends.
    const std::string stop = all.text.substr(all.text.size() - 1) + "\x01\x02";

    open();
    Seen seen;
    EXPECT_EQ(run(seen, 6, {stop.c_str()}), MST_STOP_MAX_TOKENS);
    EXPECT_EQ(seen.text, all.text);
    EXPECT_EQ(seen.ids, all.ids);
    for (int32_t id : seen.ids) EXPECT_GE(id, 0);
    EXPECT_EQ(mst_session_n_past(session_), prompt_.size() + 6);
}

TEST_F(GenerateContext, FullContextStopsBeforeShowingATokenItCannotHold) {
    open(uint32_t(prompt_.size() + 3));
    Seen seen;
    EXPECT_EQ(run(seen, 10), MST_STOP_CONTEXT_FULL);
    EXPECT_EQ(seen.ids.size(), 3u);
    EXPECT_EQ(mst_session_n_past(session_), prompt_.size() + 3);
}

TEST_F(GenerateContext, EveryEndOfSequenceIdOfGenerationConfigStopsAndIsInTheContext) {
    // Learn the first greedy token, then name it (with the tokenizer's own eos) in
    // generation_config.json, as gpt-oss lists several end-of-sequence ids there.
    open();
    Seen first;
    ASSERT_EQ(run(first, 1), MST_STOP_MAX_TOKENS);
    ASSERT_EQ(first.ids.size(), 1u);
    const int32_t token = first.ids[0];
    mst_session_free(session_);
    session_ = nullptr;
    mst_model_free(model_);
    model_ = nullptr;

    const fs::path gen = fs::path(dir_) / "generation_config.json";
    nlohmann::json config = nlohmann::json::parse(std::ifstream(gen));
    config["eos_token_id"] = nlohmann::json::array({2, token});
    std::ofstream(gen) << config.dump();

    open();
    const int32_t *eos = nullptr;
    size_t n_eos = 0;
    ASSERT_EQ(mst_model_eos_tokens(model_, &eos, &n_eos), MST_OK) << mst_last_error();
    std::vector<int32_t> want{2, token};
    std::sort(want.begin(), want.end());
    want.erase(std::unique(want.begin(), want.end()), want.end());
    EXPECT_EQ(std::vector<int32_t>(eos, eos + n_eos), want);
    Seen seen;
    EXPECT_EQ(run(seen, 5, {}, false), MST_STOP_EOS);
    EXPECT_EQ(seen.ids, std::vector<int32_t>{token});  // shown once, with no text of its own
    EXPECT_EQ(seen.text, "");
    EXPECT_EQ(mst_session_n_past(session_), prompt_.size() + 1);
}

TEST_F(GenerateContext, MalformedGenerationConfigIsNamed) {
    std::ofstream(fs::path(dir_) / "generation_config.json") << R"({"eos_token_id": "two"})";
    EXPECT_EQ(mst_model_load(dir_.c_str(), nullptr, &model_), MST_ERR_BAD_FORMAT);
    const std::string message = mst_last_error();
    EXPECT_NE(message.find("generation_config.json"), std::string::npos) << message;
    EXPECT_NE(message.find("eos_token_id"), std::string::npos) << message;
}

}  // namespace
