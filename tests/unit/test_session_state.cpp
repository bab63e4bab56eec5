// Session state save/restore and context trimming through the C ABI: a restored session
// continues bit for bit as the original (logits and samples), a trimmed one as a fresh
// evaluation of the same calls, and bad states are refused by name, leaving the session
// as it was.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "moestream.h"
#include "moestream.hpp"
#include "test_paths.h"

namespace {

const std::vector<int32_t> kPrompt = {11, 42, 7, 99, 3, 64, 5, 18};
const std::vector<int32_t> kMore = {21, 8, 77};

mst_session_params ctx_params(uint32_t n_ctx) {
    mst_session_params p = mst::session_params();
    p.n_ctx = n_ctx;
    p.seed = 1234;
    return p;
}

// Tokens sampled at temperature 1 (so the random generator matters), each evaluated.
std::vector<int32_t> sample_run(mst::SessionHandle &s, int n) {
    mst_sampler_params sp = mst::sampler_params();
    sp.temperature = 1.0f;
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
        out.push_back(s.sample(sp));
        s.eval({out.back()});
    }
    return out;
}

class SessionState : public ::testing::TestWithParam<const char *> {
protected:
    mst::ModelHandle model{mst::test::data_path(GetParam())};
};

TEST_P(SessionState, RestoredSessionContinuesBitForBit) {
    mst::SessionHandle original(model, ctx_params(64));
    original.eval(kPrompt);
    const std::vector<uint8_t> state = original.save_state();

    // A session of another n_ctx takes it: the state does not depend on n_ctx.
    mst::SessionHandle restored(model, ctx_params(32));
    restored.eval({1, 2});  // something to replace
    restored.load_state(state);
    EXPECT_EQ(restored.n_past(), kPrompt.size());
    EXPECT_EQ(restored.logits(), original.logits());

    original.eval(kMore);
    restored.eval(kMore);
    EXPECT_EQ(restored.logits(), original.logits());
    EXPECT_EQ(sample_run(restored, 4), sample_run(original, 4));
}

TEST_P(SessionState, FileRoundTrip) {
    const std::string dir = mst::test::make_temp_dir("mst_session_state");
    const std::string path = dir + "/s.state";
    mst::SessionHandle original(model, ctx_params(64));
    original.eval(kPrompt);
    original.save_state_file(path);
    mst::SessionHandle restored(model, ctx_params(64));
    restored.load_state_file(path);
    original.eval(kMore);
    restored.eval(kMore);
    EXPECT_EQ(restored.logits(), original.logits());
    std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Architectures, SessionState,
                         ::testing::Values("qwen3_moe_tiny", "qwen3_5_moe_tiny", "deepseek_v3_tiny", "gpt_oss_tiny"));

class SessionStateQwen3 : public ::testing::Test {
protected:
    mst::ModelHandle model{mst::test::data_path("qwen3_moe_tiny")};
};

// The kept prefix is evaluated in the same batches as the fresh session's (a token's keys
// may differ in the last bits with the batch it was computed in); what follows it in the
// trimmed session, positions now stale, must not matter.
TEST_F(SessionStateQwen3, TrimThenEvaluateEqualsFreshEvaluation) {
    const std::vector<int32_t> head(kPrompt.begin(), kPrompt.begin() + 4), tail(kPrompt.begin() + 4, kPrompt.end());
    mst::SessionHandle trimmed(model, ctx_params(64));
    trimmed.eval(head);
    trimmed.eval(tail);
    trimmed.eval(kMore);
    trimmed.trim(4);
    EXPECT_EQ(trimmed.n_past(), 4u);
    const float *logits = nullptr;
    size_t n_vocab = 0;
    EXPECT_EQ(mst_session_logits(trimmed.get(), &logits, &n_vocab), MST_ERR_INVALID_ARGUMENT)
        << "a trimmed session has no logits until it evaluates again";
    trimmed.eval(kMore);

    mst::SessionHandle fresh(model, ctx_params(64));
    fresh.eval(head);
    fresh.eval(kMore);
    EXPECT_EQ(trimmed.logits(), fresh.logits());
}

TEST_F(SessionStateQwen3, SetSeedMakesSamplesRepeat) {
    mst::SessionHandle a(model, ctx_params(64)), b(model, ctx_params(64));
    a.eval(kPrompt);
    b.eval(kPrompt);
    a.set_seed(99);
    const std::vector<int32_t> first = sample_run(a, 6);
    b.set_seed(99);
    EXPECT_EQ(sample_run(b, 6), first);
}

TEST_F(SessionStateQwen3, TrimBeyondTheContextIsRefused) {
    mst::SessionHandle s(model, ctx_params(64));
    s.eval(kPrompt);
    EXPECT_EQ(mst_session_trim(s.get(), kPrompt.size() + 1), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("holds 8"), std::string::npos) << mst_last_error();
    EXPECT_EQ(mst_session_trim(s.get(), kPrompt.size()), MST_OK);
    EXPECT_EQ(s.n_past(), kPrompt.size());
}

TEST_F(SessionStateQwen3, SizeQueryAndSmallBuffer) {
    mst::SessionHandle s(model, ctx_params(64));
    s.eval(kPrompt);
    size_t n = 0;
    ASSERT_EQ(mst_session_state_save(s.get(), nullptr, 0, &n), MST_ERR_BUFFER_TOO_SMALL);
    std::vector<uint8_t> small(n - 1);
    size_t n2 = 0;
    EXPECT_EQ(mst_session_state_save(s.get(), small.data(), small.size(), &n2), MST_ERR_BUFFER_TOO_SMALL);
    EXPECT_EQ(n2, n);
    std::vector<uint8_t> exact(n);
    EXPECT_EQ(mst_session_state_save(s.get(), exact.data(), exact.size(), &n2), MST_OK) << mst_last_error();
}

// Each bad state is refused with its own status and the session keeps its context.
class BadState : public SessionStateQwen3 {
protected:
    void expect_refused(const std::vector<uint8_t> &bytes, mst_status want, const std::string &words) {
        mst::SessionHandle target(model, ctx_params(64));
        target.eval(kMore);
        const std::vector<float> before = target.logits();
        EXPECT_EQ(mst_session_state_load(target.get(), bytes.data(), bytes.size()), want) << mst_last_error();
        EXPECT_NE(std::string(mst_last_error()).find(words), std::string::npos) << mst_last_error();
        EXPECT_EQ(target.n_past(), kMore.size());
        EXPECT_EQ(target.logits(), before);
    }
    std::vector<uint8_t> good() {
        mst::SessionHandle s(model, ctx_params(64));
        s.eval(kPrompt);
        return s.save_state();
    }
};

TEST_F(BadState, Truncated) {
    std::vector<uint8_t> bytes = good();
    bytes.resize(bytes.size() - 5);
    expect_refused(bytes, MST_ERR_BAD_FORMAT, "truncated");
    bytes.resize(20);
    expect_refused(bytes, MST_ERR_BAD_FORMAT, "truncated");
}

TEST_F(BadState, NotAState) {
    std::vector<uint8_t> bytes = good();
    bytes[0] = 'X';
    expect_refused(bytes, MST_ERR_BAD_FORMAT, "not a moestream session state");
}

TEST_F(BadState, Corrupted) {
    std::vector<uint8_t> bytes = good();
    bytes[bytes.size() / 2] ^= 0x40;
    expect_refused(bytes, MST_ERR_CHECKSUM, "corrupted");
}

TEST_F(BadState, OtherVersion) {
    std::vector<uint8_t> bytes = good();
    bytes[8] = 99;  // the u32 version after the magic
    expect_refused(bytes, MST_ERR_UNSUPPORTED, "version 99");
}

TEST_F(BadState, OtherModel) {
    mst::ModelHandle other(mst::test::data_path("qwen3_moe_trained"));
    mst::SessionHandle s(other, ctx_params(64));
    s.eval(kPrompt);
    expect_refused(s.save_state(), MST_ERR_INVALID_ARGUMENT, "another model");
}

TEST_F(BadState, MoreTokensThanTheContext) {
    mst::SessionHandle big(model, ctx_params(64));
    big.eval(kPrompt);
    mst::SessionHandle small(model, ctx_params(4));
    const std::vector<uint8_t> bytes = big.save_state();
    EXPECT_EQ(mst_session_state_load(small.get(), bytes.data(), bytes.size()), MST_ERR_CONTEXT_FULL);
    EXPECT_EQ(small.n_past(), 0u);
}

TEST_F(BadState, MissingFile) {
    mst::SessionHandle s(model, ctx_params(64));
    EXPECT_EQ(mst_session_state_load_file(s.get(), "/nonexistent/dir/s.state"), MST_ERR_IO);
    EXPECT_NE(std::string(mst_last_error()).find("/nonexistent/dir/s.state"), std::string::npos);
}

TEST(SessionStateRecurrent, TrimMidwayIsUnsupportedButResetWorks) {
    mst::ModelHandle model(mst::test::data_path("qwen3_5_moe_tiny"));
    mst::SessionHandle s(model, ctx_params(64));
    s.eval(kPrompt);
    EXPECT_EQ(mst_session_trim(s.get(), 3), MST_ERR_UNSUPPORTED);
    EXPECT_NE(std::string(mst_last_error()).find("cannot be rewound"), std::string::npos) << mst_last_error();
    EXPECT_EQ(s.n_past(), kPrompt.size());
    EXPECT_EQ(mst_session_trim(s.get(), 0), MST_OK);
    s.eval(kMore);  // a fresh sequence from position 0
    mst::SessionHandle fresh(model, ctx_params(64));
    fresh.eval(kMore);
    EXPECT_EQ(s.logits(), fresh.logits());
}

}  // namespace
