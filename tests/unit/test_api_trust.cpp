// Options mean what they say and bad input never takes the process down: thread counts
// beyond the machine, model files that are empty, garbage, FIFOs or belong to another
// model, ids the model can generate but the tokenizer lacks, and non-finite logits.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "file_bytes.h"
#include "moestream.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

using mst::test::read_file_bytes;
using mst::test::write_file_bytes;

// Log lines at WARN and above, collected while a test runs.
struct CapturedLog {
    CapturedLog() { mst_log_set(&CapturedLog::add, MST_LOG_WARN, this); }
    ~CapturedLog() { mst_log_set(nullptr, MST_LOG_WARN, nullptr); }
    static void add(mst_log_level, const char *message, void *self) {
        auto *log = static_cast<CapturedLog *>(self);
        const std::lock_guard<std::mutex> lock(log->mutex);
        log->text += message;
        log->text += '\n';
    }
    std::string all() {
        const std::lock_guard<std::mutex> lock(mutex);
        return text;
    }
    std::mutex mutex;
    std::string text;
};

// A private copy of the tiny checkpoint that a test may change.
class Trust : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = mst::test::make_temp_dir("mst_trust_");
        ASSERT_FALSE(dir_.empty());
        fs::copy(mst::test::data_path("qwen3_moe_tiny"), dir_, fs::copy_options::recursive);
    }
    void TearDown() override {
        mst_model_free(model_);
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    mst_status load(const mst_model_params *params = nullptr) { return mst_model_load(dir_.c_str(), params, &model_); }

    void edit_json(const std::string &name, const std::function<void(nlohmann::json &)> &edit) {
        nlohmann::json j = nlohmann::json::parse(read_file_bytes(fs::path(dir_) / name));
        edit(j);
        write_file_bytes(fs::path(dir_) / name, j.dump());
    }

    std::string dir_;
    mst_model *model_ = nullptr;
};

TEST_F(Trust, ThreadCountBeyondTheMachineIsClampedNotFatal) {
    // libgomp ends the process when it cannot create a thread it was told to start.
    CapturedLog log;
    mst_model_params p;
    mst_model_default_params(&p);
    p.n_threads = std::numeric_limits<int32_t>::max();
    ASSERT_EQ(load(&p), MST_OK) << mst_last_error();
    EXPECT_NE(log.all().find("n_threads 2147483647 exceeds"), std::string::npos) << log.all();
    mst_session *session = nullptr;
    ASSERT_EQ(mst_session_create(model_, nullptr, &session), MST_OK) << mst_last_error();
    std::vector<int32_t> prompt(64);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t(5 + i);  // a prefill runs parallel kernels
    EXPECT_EQ(mst_session_eval(session, prompt.data(), prompt.size()), MST_OK) << mst_last_error();
    mst_session_free(session);

    p.n_threads = -1;
    mst_model *bad = nullptr;
    EXPECT_EQ(mst_model_load(dir_.c_str(), &p, &bad), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("n_threads"), std::string::npos);
}

TEST_F(Trust, ConvertThreadCountBeyondTheMachineIsClampedNotFatal) {
    CapturedLog log;
    mst_convert_params p;
    mst_convert_default_params(&p);
    p.n_threads = 100000;
    const std::string out = dir_ + "/model.mst";
    ASSERT_EQ(mst_convert(dir_.c_str(), out.c_str(), &p, nullptr), MST_OK) << mst_last_error();
    EXPECT_NE(log.all().find("n_threads 100000 exceeds"), std::string::npos) << log.all();
}

TEST_F(Trust, DetokenizeAcceptsEveryRowTheModelCanGenerate) {
    ASSERT_EQ(load(), MST_OK) << mst_last_error();
    mst_model_info info{};
    info.struct_size = sizeof info;
    ASSERT_EQ(mst_model_get_info(model_, &info), MST_OK);
    // The fixture's tokenizer has fewer ids than the model has output rows.
    const int32_t last_row = info.n_vocab - 1;
    const int32_t ids[] = {5, last_row, 6};
    size_t n = 0;
    // A size query: NULL buffer, capacity 0.
    EXPECT_EQ(mst_detokenize(model_, ids, 3, nullptr, 0, &n), MST_ERR_BUFFER_TOO_SMALL) << mst_last_error();
    const int32_t known[] = {5, 6};
    size_t n_known = 0;
    EXPECT_EQ(mst_detokenize(model_, known, 2, nullptr, 0, &n_known), MST_ERR_BUFFER_TOO_SMALL);
    EXPECT_EQ(n, n_known);  // the row without a token decodes to nothing
    std::string text(n, '\0');
    EXPECT_EQ(mst_detokenize(model_, ids, 3, text.data(), text.size(), &n), MST_OK) << mst_last_error();
    EXPECT_STREQ(mst_token_text(model_, last_row), "");
    const int32_t empty_row[] = {last_row};
    EXPECT_EQ(mst_detokenize(model_, empty_row, 1, nullptr, 0, &n), MST_OK) << mst_last_error();
    EXPECT_EQ(n, 0u);
    const int32_t outside[] = {info.n_vocab};
    EXPECT_EQ(mst_detokenize(model_, outside, 1, nullptr, 0, &n), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find(std::to_string(info.n_vocab)), std::string::npos);
    EXPECT_EQ(mst_token_text(model_, info.n_vocab), nullptr);
}

TEST_F(Trust, TokenizerLargerThanTheVocabularyIsRefused) {
    edit_json("config.json", [](nlohmann::json &c) { c["vocab_size"] = 512; });
    EXPECT_EQ(load(), MST_ERR_BAD_FORMAT);
    EXPECT_EQ(model_, nullptr);
    const std::string message = mst_last_error();
    EXPECT_NE(message.find("tokenizer.json"), std::string::npos) << message;
    EXPECT_NE(message.find("512"), std::string::npos) << message;
}

TEST_F(Trust, EmptyOrGarbageModelFileIsBadFormat) {
    const std::string empty = dir_ + "/empty.mst";
    write_file_bytes(empty, "");
    EXPECT_EQ(mst_model_load(empty.c_str(), nullptr, &model_), MST_ERR_BAD_FORMAT);
    EXPECT_NE(std::string(mst_last_error()).find("empty"), std::string::npos) << mst_last_error();
    const std::string garbage = dir_ + "/garbage.mst";
    write_file_bytes(garbage, std::string(10000, 'x'));
    EXPECT_EQ(mst_model_load(garbage.c_str(), nullptr, &model_), MST_ERR_BAD_FORMAT);
    EXPECT_NE(std::string(mst_last_error()).find(garbage), std::string::npos) << mst_last_error();
}

TEST_F(Trust, FifoIsNamedNotOpened) {
    const std::string fifo = dir_ + "/model.fifo";
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_EQ(mst_model_load(fifo.c_str(), nullptr, &model_), MST_ERR_IO);
    EXPECT_NE(std::string(mst_last_error()).find("FIFO"), std::string::npos) << mst_last_error();
}

TEST_F(Trust, ContextFullIsSaidOnce) {
    ASSERT_EQ(load(), MST_OK) << mst_last_error();
    mst_session_params sp;
    mst_session_default_params(&sp);
    sp.n_ctx = 4;
    mst_session *session = nullptr;
    ASSERT_EQ(mst_session_create(model_, &sp, &session), MST_OK);
    const int32_t tokens[] = {5, 6, 7, 8, 9};
    EXPECT_EQ(mst_session_eval(session, tokens, 5), MST_ERR_CONTEXT_FULL);
    // Callers print the status name before the message.
    const std::string message = mst_last_error();
    EXPECT_EQ(message.find("context full"), std::string::npos) << message;
    EXPECT_NE(message.find("n_ctx 4"), std::string::npos) << message;
    mst_session_free(session);
}

// Overwrite element 0 of lm_head.weight (BF16) with `bits`: logit 0 becomes non-finite.
void poison_first_logit(const fs::path &weights, uint16_t bits) {
    std::string bytes = read_file_bytes(weights);
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
    const nlohmann::json &t = header.at("lm_head.weight");
    ASSERT_EQ(t.at("dtype"), "BF16");
    const uint64_t at = 8 + n + t.at("data_offsets")[0].get<uint64_t>();
    std::memcpy(bytes.data() + at, &bits, 2);
    write_file_bytes(weights, bytes);
}

TEST_F(Trust, NonFiniteLogitsAreReportedNotSampledAsTokenZero) {
    for (const uint16_t bits : {uint16_t(0x7fc0) /* NaN */, uint16_t(0x7f80) /* +Inf */}) {
        SCOPED_TRACE(bits);
        fs::copy_file(mst::test::data_path("qwen3_moe_tiny/model.safetensors"), fs::path(dir_) / "model.safetensors",
                      fs::copy_options::overwrite_existing);
        poison_first_logit(fs::path(dir_) / "model.safetensors", bits);
        mst_model_free(model_);
        model_ = nullptr;
        ASSERT_EQ(load(), MST_OK) << mst_last_error();
        mst_session *session = nullptr;
        ASSERT_EQ(mst_session_create(model_, nullptr, &session), MST_OK);
        const int32_t tokens[] = {5, 6, 7};
        ASSERT_EQ(mst_session_eval(session, tokens, 3), MST_OK) << mst_last_error();
        mst_sampler_params greedy;
        mst_sampler_default_params(&greedy);
        greedy.temperature = 0.0f;
        int32_t token = -1;
        EXPECT_EQ(mst_session_sample(session, &greedy, &token), MST_ERR_BACKEND);
        const std::string message = mst_last_error();
        EXPECT_NE(message.find("not finite"), std::string::npos) << message;
        EXPECT_NE(message.find("id 0"), std::string::npos) << message;
        mst_sampler_params sampled;
        mst_sampler_default_params(&sampled);
        EXPECT_EQ(mst_session_sample(session, &sampled, &token), MST_ERR_BACKEND);
        mst_session_free(session);
    }
}

TEST_F(Trust, NamesFromFilesAreEscapedNotCutAtANul) {
    const fs::path weights = fs::path(dir_) / "model.safetensors";
    const std::string bytes = read_file_bytes(weights);
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
    header[std::string("evil\0name\x1b[2J", 13)] = {{"dtype", "X9"}, {"shape", {1}}, {"data_offsets", {0, 1}}};
    const std::string text = header.dump();
    std::string length(8, '\0');
    const uint64_t new_n = text.size();
    std::memcpy(length.data(), &new_n, 8);
    write_file_bytes(weights, length + text + bytes.substr(8 + n));
    EXPECT_EQ(load(), MST_ERR_UNSUPPORTED);
    const std::string message = mst_last_error();
    EXPECT_NE(message.find("evil\\x00name\\x1b[2J"), std::string::npos) << message;
    EXPECT_NE(message.find("X9"), std::string::npos) << message;  // the message goes on past the name
}

}  // namespace
