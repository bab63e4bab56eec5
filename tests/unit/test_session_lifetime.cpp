// Lifetimes and threads are enforced: a model freed before its sessions lives on until
// the last of them goes (in C and through the C++ wrappers), and a session entered by a
// second thread, or changed from inside its own generate callback, says MST_ERR_BUSY
// instead of racing.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "moestream.h"
#include "moestream.hpp"
#include "test_paths.h"

namespace {

std::string tiny() { return mst::test::data_path("qwen3_moe_tiny"); }

TEST(SessionLifetime, ModelFreedFirstLivesUntilItsLastSession) {
    mst_model *model = nullptr;
    ASSERT_EQ(mst_model_load(tiny().c_str(), nullptr, &model), MST_OK) << mst_last_error();
    mst_session *a = nullptr, *b = nullptr;
    ASSERT_EQ(mst_session_create(model, nullptr, &a), MST_OK);
    ASSERT_EQ(mst_session_create(model, nullptr, &b), MST_OK);
    mst_model_free(model);  // the sessions keep what they use
    const int32_t tokens[] = {5, 6, 7};
    EXPECT_EQ(mst_session_eval(a, tokens, 3), MST_OK) << mst_last_error();
    mst_session_free(a);
    mst_generate_params gp;
    mst_generate_default_params(&gp);
    gp.max_tokens = 3;
    gp.ignore_eos = 1;
    mst_stop_reason reason = MST_STOP_NONE;
    EXPECT_EQ(mst_generate(b, tokens, 3, &gp, nullptr, nullptr, &reason), MST_OK) << mst_last_error();
    EXPECT_EQ(reason, MST_STOP_MAX_TOKENS);
    mst_session_free(b);
}

TEST(SessionLifetime, CppModelHandleDestroyedBeforeItsSessionHandle) {
    auto model = std::make_unique<mst::ModelHandle>(tiny());
    mst::SessionHandle session(*model);
    const std::vector<int32_t> prompt = model->tokenize("Hello");
    model.reset();
    mst_generate_params gp = mst::generate_params();
    gp.max_tokens = 2;
    gp.ignore_eos = 1;
    int pieces = 0;
    EXPECT_EQ(session.generate(prompt, gp, [&](int32_t, std::string_view) { return ++pieces, false; }),
              MST_STOP_MAX_TOKENS);
    EXPECT_EQ(pieces, 2);
    EXPECT_EQ(session.n_past(), prompt.size() + 2);
}

// A generate whose callback holds the session until another thread has tried it.
struct HeldGenerate {
    std::atomic<bool> inside{false};
    std::atomic<bool> release{false};
    mst_session *session = nullptr;
    mst_status eval_from_callback = MST_OK;
    mst_status logits_from_callback = MST_ERR_INTERNAL;
    size_t n_past_from_callback = 0;
};

int hold(int32_t, const char *, size_t, void *user) {
    auto *h = static_cast<HeldGenerate *>(user);
    const int32_t token[] = {5};
    h->eval_from_callback = mst_session_eval(h->session, token, 1);
    const float *logits = nullptr;
    size_t n = 0;
    h->logits_from_callback = mst_session_logits(h->session, &logits, &n);
    h->n_past_from_callback = mst_session_n_past(h->session);
    h->inside = true;
    while (!h->release) std::this_thread::yield();
    return 1;
}

TEST(SessionThreads, SecondThreadGetsBusyAndTheCallbackMayOnlyRead) {
    mst_model *model = nullptr;
    ASSERT_EQ(mst_model_load(tiny().c_str(), nullptr, &model), MST_OK) << mst_last_error();
    mst_session *session = nullptr;
    ASSERT_EQ(mst_session_create(model, nullptr, &session), MST_OK);
    HeldGenerate held;
    held.session = session;
    const int32_t prompt[] = {5, 6, 7};
    mst_status generated = MST_ERR_INTERNAL;
    std::thread generator([&] {
        mst_generate_params gp;
        mst_generate_default_params(&gp);
        gp.max_tokens = 4;
        generated = mst_generate(session, prompt, 3, &gp, &hold, &held, nullptr);
    });
    while (!held.inside) std::this_thread::yield();

    const int32_t more[] = {8};
    EXPECT_EQ(mst_session_eval(session, more, 1), MST_ERR_BUSY);
    EXPECT_NE(std::string(mst_last_error()).find("another thread"), std::string::npos) << mst_last_error();
    const float *logits = nullptr;
    size_t n = 0;
    EXPECT_EQ(mst_session_logits(session, &logits, &n), MST_ERR_BUSY);
    mst_session_stats stats{};
    stats.struct_size = sizeof stats;
    EXPECT_EQ(mst_session_get_stats(session, &stats), MST_ERR_BUSY);
    mst_session_reset(session);  // refused: reports through the log and mst_last_error
    EXPECT_EQ(mst_session_n_past(session), 3u);  // a counter, safe to read meanwhile

    held.release = true;
    generator.join();
    EXPECT_EQ(generated, MST_OK);
    EXPECT_EQ(held.eval_from_callback, MST_ERR_BUSY);
    EXPECT_EQ(held.logits_from_callback, MST_OK);
    EXPECT_EQ(held.n_past_from_callback, 3u);
    EXPECT_EQ(mst_session_n_past(session), 4u);  // the reset was refused; the shown token is in
    EXPECT_EQ(mst_session_eval(session, more, 1), MST_OK) << mst_last_error();  // free again
    mst_session_free(session);
    mst_model_free(model);
}

}  // namespace
