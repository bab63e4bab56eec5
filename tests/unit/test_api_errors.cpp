// Bad input through the C ABI: each case returns its own status and a message naming the
// problem, nothing aborts, and a session stays usable after a failed call.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <functional>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "file_bytes.h"
#include "moestream.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

using mst::test::read_file_bytes;
using mst::test::write_file_bytes;

// A private copy of the tiny checkpoint that a test may damage.
class ApiErrors : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = mst::test::make_temp_dir("mst_api_errors_");
        ASSERT_FALSE(dir_.empty());
        fs::copy(mst::test::data_path("qwen3_moe_tiny"), dir_, fs::copy_options::recursive);
        weights_ = fs::path(dir_) / "model.safetensors";
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    mst_status load(mst_model **out, const mst_model_params *params = nullptr) {
        return mst_model_load(dir_.c_str(), params, out);
    }

    // Rewrite the safetensors header through `edit`, keeping the data section as is
    // (data offsets are relative to the end of the header, so its length may change).
    void edit_header(const std::function<void(nlohmann::json &)> &edit) {
        const std::string bytes = read_file_bytes(weights_);
        uint64_t n = 0;
        std::memcpy(&n, bytes.data(), 8);
        nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
        edit(header);
        const std::string text = header.dump();
        const uint64_t new_n = text.size();
        std::string length(8, '\0');
        std::memcpy(length.data(), &new_n, 8);
        write_file_bytes(weights_, length + text + bytes.substr(8 + n));
    }

    void expect_load_fails(mst_status want, const std::string &message_part) {
        mst_model *model = nullptr;
        EXPECT_EQ(load(&model), want) << mst_last_error();
        EXPECT_EQ(model, nullptr);
        EXPECT_NE(std::string(mst_last_error()).find(message_part), std::string::npos)
            << "message: " << mst_last_error();
        mst_model_free(model);
    }

    std::string dir_;
    fs::path weights_;
};

TEST_F(ApiErrors, MissingDirectory) {
    mst_model *model = nullptr;
    EXPECT_EQ(mst_model_load("/nonexistent/moestream/model", nullptr, &model), MST_ERR_IO);
    EXPECT_NE(std::string(mst_last_error()).find("/nonexistent/moestream/model"), std::string::npos);
    EXPECT_EQ(model, nullptr);
}

TEST_F(ApiErrors, TruncatedSafetensors) {
    const std::string bytes = read_file_bytes(weights_);
    write_file_bytes(weights_, bytes.substr(0, bytes.size() / 2));
    expect_load_fails(MST_ERR_BAD_FORMAT, "model.safetensors");
}

TEST_F(ApiErrors, HeaderNotJson) {
    std::string bytes = read_file_bytes(weights_);
    bytes[8] = '#';  // the header's opening brace
    write_file_bytes(weights_, bytes);
    expect_load_fails(MST_ERR_BAD_FORMAT, "JSON");
}

TEST_F(ApiErrors, TensorOffsetsBeyondFile) {
    edit_header([](nlohmann::json &h) { h["model.norm.weight"]["data_offsets"] = {1u << 30, (1u << 30) + 128}; });
    expect_load_fails(MST_ERR_BAD_FORMAT, "model.norm.weight");
}

TEST_F(ApiErrors, UnsupportedDtype) {
    edit_header([](nlohmann::json &h) { h["model.norm.weight"]["dtype"] = "C64"; });
    expect_load_fails(MST_ERR_UNSUPPORTED, "model.norm.weight");
}

TEST_F(ApiErrors, UnknownModelType) {
    nlohmann::json config = nlohmann::json::parse(read_file_bytes(fs::path(dir_) / "config.json"));
    config["model_type"] = "llama_but_not_really";
    write_file_bytes(fs::path(dir_) / "config.json", config.dump());
    expect_load_fails(MST_ERR_UNSUPPORTED, "llama_but_not_really");
}

TEST_F(ApiErrors, ConfigNotJson) {
    write_file_bytes(fs::path(dir_) / "config.json", "{ \"model_type\": ");
    expect_load_fails(MST_ERR_BAD_FORMAT, "config.json");
}

TEST_F(ApiErrors, MissingTensor) {
    edit_header([](nlohmann::json &h) {
        h["model.norm.weightX"] = h["model.norm.weight"];
        h.erase("model.norm.weight");
    });
    expect_load_fails(MST_ERR_BAD_FORMAT, "model.norm.weight");
}

TEST_F(ApiErrors, ImpossibleExpertBudget) {
    mst_model_params p;
    mst_model_default_params(&p);
    p.experts_per_token = 1000;
    mst_model *model = nullptr;
    EXPECT_EQ(load(&model, &p), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("experts_per_token"), std::string::npos);
}

TEST_F(ApiErrors, UnknownBackendAndStorage) {
    mst_model_params p;
    mst_model_default_params(&p);
    p.backend = "quantum";
    mst_model *model = nullptr;
    EXPECT_EQ(load(&model, &p), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("quantum"), std::string::npos);
    mst_model_default_params(&p);
    p.storage = "floppy";
    EXPECT_EQ(load(&model, &p), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("floppy"), std::string::npos);
}

TEST_F(ApiErrors, BadStructSize) {
    mst_model_params p;
    mst_model_default_params(&p);
    p.struct_size = sizeof p + 64;
    mst_model *model = nullptr;
    EXPECT_EQ(load(&model, &p), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("struct_size"), std::string::npos);
}

TEST_F(ApiErrors, NullArguments) {
    EXPECT_EQ(mst_model_load(nullptr, nullptr, nullptr), MST_ERR_INVALID_ARGUMENT);
    mst_model *model = nullptr;
    EXPECT_EQ(mst_model_load(nullptr, nullptr, &model), MST_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(mst_session_eval(nullptr, nullptr, 0), MST_ERR_INVALID_ARGUMENT);
    mst_model_free(nullptr);
    mst_session_free(nullptr);
}

// Sessions over a good model: bad calls fail cleanly and leave the session usable.
class SessionErrors : public ApiErrors {
protected:
    void SetUp() override {
        ApiErrors::SetUp();
        mst_model_params p;
        mst_model_default_params(&p);
        p.expert_cache_bytes = 0;  // every expert read comes from the file
        ASSERT_EQ(load(&model_, &p), MST_OK) << mst_last_error();
        mst_session_params sp;
        mst_session_default_params(&sp);
        sp.n_ctx = 8;
        ASSERT_EQ(mst_session_create(model_, &sp, &session_), MST_OK) << mst_last_error();
    }
    void TearDown() override {
        mst_session_free(session_);
        mst_model_free(model_);
        ApiErrors::TearDown();
    }
    mst_model *model_ = nullptr;
    mst_session *session_ = nullptr;
};

TEST_F(SessionErrors, TokenOutsideVocabulary) {
    const int32_t bad[] = {5, 1 << 20};
    EXPECT_EQ(mst_session_eval(session_, bad, 2), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("1048576"), std::string::npos);
    EXPECT_EQ(mst_session_n_past(session_), 0u);
    const int32_t negative[] = {-3};
    EXPECT_EQ(mst_session_eval(session_, negative, 1), MST_ERR_INVALID_ARGUMENT);
    const int32_t good[] = {5, 6};
    EXPECT_EQ(mst_session_eval(session_, good, 2), MST_OK) << mst_last_error();
}

TEST_F(SessionErrors, ContextExceeded) {
    const int32_t tokens[] = {1, 2, 3, 4, 5, 6};
    ASSERT_EQ(mst_session_eval(session_, tokens, 6), MST_OK);
    EXPECT_EQ(mst_session_eval(session_, tokens, 3), MST_ERR_CONTEXT_FULL);
    EXPECT_NE(std::string(mst_last_error()).find("n_ctx 8"), std::string::npos);
    EXPECT_EQ(mst_session_n_past(session_), 6u);
    EXPECT_EQ(mst_session_eval(session_, tokens, 2), MST_OK);  // exactly fills the context
}

TEST_F(SessionErrors, LogitsBeforeEval) {
    const float *logits = nullptr;
    size_t n = 0;
    EXPECT_EQ(mst_session_logits(session_, &logits, &n), MST_ERR_INVALID_ARGUMENT);
}

TEST_F(SessionErrors, TokenizeBufferTooSmallReportsCount) {
    const char *text = "Hello, world! This needs several tokens.";
    size_t needed = 0;
    int32_t small[2];
    EXPECT_EQ(mst_tokenize(model_, text, std::strlen(text), small, 2, &needed), MST_ERR_BUFFER_TOO_SMALL);
    EXPECT_GT(needed, 2u);
    std::vector<int32_t> ids(needed);
    size_t got = 0;
    EXPECT_EQ(mst_tokenize(model_, text, std::strlen(text), ids.data(), ids.size(), &got), MST_OK);
    EXPECT_EQ(got, needed);
    char out[4];
    size_t bytes = 0;
    EXPECT_EQ(mst_detokenize(model_, ids.data(), ids.size(), out, sizeof out, &bytes), MST_ERR_BUFFER_TOO_SMALL);
    EXPECT_EQ(bytes, std::strlen(text));
    const int32_t bad_id[] = {1 << 24};
    EXPECT_EQ(mst_detokenize(model_, bad_id, 1, out, sizeof out, &bytes), MST_ERR_INVALID_ARGUMENT);
}

TEST_F(SessionErrors, NullBufferWithACountIsNamed) {
    size_t n = 0;
    int32_t ids[4];
    EXPECT_EQ(mst_tokenize(model_, nullptr, 3, ids, 4, &n), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("text is NULL but len is 3"), std::string::npos) << mst_last_error();
    EXPECT_EQ(mst_tokenize(model_, "hi", 2, nullptr, 4, &n), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("out is NULL but capacity is 4"), std::string::npos)
        << mst_last_error();
    char text[8];
    EXPECT_EQ(mst_detokenize(model_, nullptr, 2, text, sizeof text, &n), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("tokens is NULL but n is 2"), std::string::npos) << mst_last_error();
    EXPECT_EQ(mst_detokenize(model_, nullptr, 0, nullptr, 0, &n), MST_OK);  // a size query of nothing
    EXPECT_EQ(n, 0u);
}

TEST_F(SessionErrors, ExpertReadFailureIsReportedAndRecoverable) {
    // Experts are read lazily: damage the file after loading, and the next evaluation
    // fails naming the layer and expert; once the file is whole again, it succeeds.
    const std::string whole = read_file_bytes(weights_);
    fs::resize_file(weights_, 4096 * 2);
    const int32_t tokens[] = {5, 6, 7};
    EXPECT_NE(mst_session_eval(session_, tokens, 3), MST_OK);
    const std::string message = mst_last_error();
    EXPECT_NE(message.find("layer"), std::string::npos) << message;
    EXPECT_NE(message.find("expert"), std::string::npos) << message;
    EXPECT_EQ(mst_session_n_past(session_), 0u);
    {
        std::fstream f(weights_, std::ios::binary | std::ios::in | std::ios::out);  // same inode, as the open fd
        f.write(whole.data(), std::streamsize(whole.size()));
    }
    EXPECT_EQ(mst_session_eval(session_, tokens, 3), MST_OK) << mst_last_error();
}

TEST(ApiStatus, NamesAndVersion) {
    EXPECT_STREQ(mst_status_string(MST_OK), "ok");
    EXPECT_STREQ(mst_status_string(MST_ERR_CHECKSUM), "checksum mismatch");
    EXPECT_STREQ(mst_status_string(static_cast<mst_status>(999)), "unknown status");
    EXPECT_EQ(mst_version_number(), uint32_t(MST_VERSION_NUMBER));
    EXPECT_EQ(MST_OK, 0);
}

}  // namespace

// mst_model_get_backend_stats: arguments checked; on the CPU backend there is nothing to count.
TEST_F(SessionErrors, BackendStatsCheckArgumentsAndAreZeroOnTheCpu) {
    mst_backend_stats s{};
    s.struct_size = sizeof s;
    EXPECT_EQ(mst_model_get_backend_stats(nullptr, &s), MST_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(mst_model_get_backend_stats(model_, nullptr), MST_ERR_INVALID_ARGUMENT);
    mst_model_info info{};
    info.struct_size = sizeof info;
    ASSERT_EQ(mst_model_get_info(model_, &info), MST_OK);
    const int32_t tokens[] = {1, 2};
    ASSERT_EQ(mst_session_eval(session_, tokens, 2), MST_OK) << mst_last_error();
    ASSERT_EQ(mst_model_get_backend_stats(model_, &s), MST_OK) << mst_last_error();
    if (std::string(info.backend) == "cpu") {
        EXPECT_EQ(s.submissions, 0u);
        EXPECT_EQ(s.pipelines_created, 0u);
    } else {
        EXPECT_GT(s.submissions, 0u);
        EXPECT_EQ(s.replayed + s.recorded, s.submissions);
    }
}

// Each eval reuses the logits buffer of the eval before last (no fresh zero-filled vector):
// the same tokens give the same logits as the first time, and a failed eval leaves them.
TEST_F(SessionErrors, ReusedLogitsBuffersGiveTheSameLogits) {
    auto logits = [&] {
        const float *p = nullptr;
        size_t n = 0;
        EXPECT_EQ(mst_session_logits(session_, &p, &n), MST_OK) << mst_last_error();
        return std::vector<float>(p, p + n);
    };
    const int32_t a[] = {5}, b[] = {6}, c[] = {7};
    ASSERT_EQ(mst_session_eval(session_, a, 1), MST_OK);
    const std::vector<float> la = logits();
    ASSERT_EQ(mst_session_eval(session_, b, 1), MST_OK);
    const std::vector<float> lb = logits();
    ASSERT_EQ(mst_session_eval(session_, c, 1), MST_OK);
    const std::vector<float> lc = logits();
    mst_session_reset(session_);
    for (int round = 0; round < 2; ++round) {  // the second round reuses buffers already reused
        ASSERT_EQ(mst_session_eval(session_, a, 1), MST_OK);
        EXPECT_EQ(logits(), la);
        ASSERT_EQ(mst_session_eval(session_, b, 1), MST_OK);
        EXPECT_EQ(logits(), lb);
        ASSERT_EQ(mst_session_eval(session_, c, 1), MST_OK);
        EXPECT_EQ(logits(), lc);
        mst_session_reset(session_);
    }
    ASSERT_EQ(mst_session_eval(session_, a, 1), MST_OK);
    const int32_t bad[] = {1 << 20};
    EXPECT_EQ(mst_session_eval(session_, bad, 1), MST_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(logits(), la);
}
