// mst_sessions_eval_batch: several sessions of one model evaluated together give each the
// logits and greedy tokens it gets alone, on every architecture (those that batch and
// those that fall back to one sequence at a time), storage tier and cache policy; a
// batched decode step reads each shared expert once; bad batches are refused by name,
// leaving every session as it was.
//
// The bound: a row of a batch goes through the same operations in the same order as
// alone (its dense products, its own attention, each expert it chose, the weighted sum
// in ascending expert id); only a kernel that blocks several rows together could sum a
// row in another order. So the logits may differ by float32 reassociation only: a
// relative error of kReassociation over the row's largest logit, and the same argmax.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "moestream.h"
#include "moestream.hpp"
#include "test_paths.h"

namespace {

constexpr double kReassociation = 1e-5;

struct Setup {
    const char *fixture;
    const char *storage;
    const char *cache_policy;
    uint64_t cache_bytes;  // 0: the automatic budget
    const char *backend = "cpu";
};

std::string setup_name(const ::testing::TestParamInfo<Setup> &info) {
    return std::string(info.param.fixture) + "_" + info.param.storage + "_" + info.param.cache_policy +
           (info.param.cache_bytes ? "_small" : "") +
           (std::string(info.param.backend) == "cpu" ? "" : std::string("_") + info.param.backend);
}

mst::ModelHandle load(const Setup &s) {
    mst_model_params p = mst::model_params();
    p.backend = s.backend;
    p.storage = s.storage;
    p.cache_policy = s.cache_policy;
    if (s.cache_bytes) p.expert_cache_bytes = s.cache_bytes;
    return mst::ModelHandle(mst::test::data_path(s.fixture), p);
}

mst_session_params ctx(uint32_t n_ctx, uint32_t n_batch = 0) {
    mst_session_params p = mst::session_params();
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    return p;
}

// Prompts of different lengths (the sequences sit at different positions).
std::vector<std::vector<int32_t>> prompts(int32_t n_vocab) {
    std::vector<std::vector<int32_t>> out;
    for (int s = 0; s < 3; ++s) {
        std::vector<int32_t> p;
        for (int i = 0; i < 3 + 4 * s; ++i) p.push_back(int32_t((17 + 31 * s + 7 * i * (s + 1)) % n_vocab));
        out.push_back(p);
    }
    return out;
}

int32_t argmax(const std::vector<float> &v) { return int32_t(std::max_element(v.begin(), v.end()) - v.begin()); }

// Largest |a - b| over the largest |a|.
double relative_error(const std::vector<float> &a, const std::vector<float> &b) {
    double diff = 0.0, scale = 1e-30;
    for (size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::fabs(double(a[i]) - double(b[i])));
        scale = std::max(scale, std::fabs(double(a[i])));
    }
    return diff / scale;
}

// "" when `backend` can run a model here, else why not (asked once per backend).
std::string backend_unavailable(const std::string &backend) {
    if (backend == "cpu") return "";
    static const std::string why = [&] {
        mst_model_params p = mst::model_params();
        p.backend = backend.c_str();
        mst_model *m = nullptr;
        if (mst_model_load(mst::test::data_path("qwen3_moe_tiny").c_str(), &p, &m) != MST_OK)
            return std::string(mst_last_error());
        mst_model_free(m);
        return std::string();
    }();
    return why;
}

// On a device backend the batched step runs as one backend batch whose results reach the
// host only at its waits, so the rows gathered for several sequences' logits must be read
// after one: the same equality, on Vulkan where a device can run it.
class BatchEval : public ::testing::TestWithParam<Setup> {
protected:
    void SetUp() override {
        const std::string why = backend_unavailable(GetParam().backend);
        if (!why.empty()) GTEST_SKIP() << "no " << GetParam().backend << " backend here: " << why;
    }
};

// Prefill together, then greedy decode steps together, against each session alone.
TEST_P(BatchEval, EachSessionGetsItsOwnLogits) {
    const mst::ModelHandle model = load(GetParam());
    const int32_t n_vocab = model.info().n_vocab;
    const auto ps = prompts(n_vocab);
    // n_batch 4: the longer prompts take several rounds, shorter ones drop out.
    std::vector<std::unique_ptr<mst::SessionHandle>> alone, together;
    for (size_t i = 0; i < ps.size(); ++i) {
        alone.push_back(std::make_unique<mst::SessionHandle>(model, ctx(64, 4)));
        together.push_back(std::make_unique<mst::SessionHandle>(model, ctx(64, 4)));
    }
    std::vector<mst::SessionHandle *> batch;
    for (auto &s : together) batch.push_back(s.get());
    mst::eval_batch(batch, ps);
    for (size_t i = 0; i < ps.size(); ++i) alone[i]->eval(ps[i]);

    double worst = 0.0;
    for (int step = 0; step < 6; ++step) {
        std::vector<std::vector<int32_t>> next;
        for (size_t i = 0; i < ps.size(); ++i) {
            const std::vector<float> a = alone[i]->logits(), b = together[i]->logits();
            ASSERT_EQ(a.size(), b.size());
            worst = std::max(worst, relative_error(a, b));
            EXPECT_LE(relative_error(a, b), kReassociation) << "session " << i << " step " << step;
            ASSERT_EQ(argmax(a), argmax(b)) << "session " << i << " step " << step;
            next.push_back({argmax(a)});
        }
        mst::eval_batch(batch, next);
        for (size_t i = 0; i < ps.size(); ++i) alone[i]->eval(next[i]);
    }
    for (size_t i = 0; i < ps.size(); ++i) EXPECT_EQ(together[i]->n_past(), alone[i]->n_past());
    RecordProperty("worst_relative_error", std::to_string(worst));
}

// all_logits and another experts_per_token in the same call: each still as alone.
TEST_P(BatchEval, MixedSessionSettings) {
    const mst::ModelHandle model = load(GetParam());
    const auto ps = prompts(model.info().n_vocab);
    mst_session_params all = ctx(64);
    all.all_logits = 1;
    mst::SessionHandle a_alone(model, all), a_batch(model, all);
    mst::SessionHandle b_alone(model, ctx(64)), b_batch(model, ctx(64));
    mst_expert_budget budget;
    mst_expert_budget_default(&budget);
    budget.experts_per_token = 1;
    ASSERT_EQ(mst_session_set_expert_budget(b_alone.get(), &budget), MST_OK);
    ASSERT_EQ(mst_session_set_expert_budget(b_batch.get(), &budget), MST_OK);
    mst::eval_batch({&a_batch, &b_batch}, {ps[1], ps[2]});
    a_alone.eval(ps[1]);
    b_alone.eval(ps[2]);
    const float *rows_alone = nullptr, *rows_batch = nullptr;
    size_t n_alone = 0, n_batch = 0, vocab = 0;
    ASSERT_EQ(mst_session_all_logits(a_alone.get(), &rows_alone, &n_alone, &vocab), MST_OK);
    ASSERT_EQ(mst_session_all_logits(a_batch.get(), &rows_batch, &n_batch, &vocab), MST_OK);
    ASSERT_EQ(n_alone, ps[1].size());
    ASSERT_EQ(n_batch, n_alone);
    EXPECT_LE(relative_error(std::vector<float>(rows_alone, rows_alone + n_alone * vocab),
                             std::vector<float>(rows_batch, rows_batch + n_batch * vocab)),
              kReassociation);
    EXPECT_LE(relative_error(b_alone.logits(), b_batch.logits()), kReassociation);
    EXPECT_EQ(argmax(b_alone.logits()), argmax(b_batch.logits()));
}

const Setup kSetups[] = {
    {"qwen3_moe_tiny", "mmap", "lrfu", 0},
    {"qwen3_moe_tiny", "pread", "none", 0},
    {"qwen3_moe_tiny", "pread", "lru", 1},  // a budget below one token's experts
    {"mixtral_tiny", "pread", "lfu", 0},
    {"gpt_oss_tiny", "mmap", "arc", 0},
    {"deepseek_v3_tiny", "pread", "lrfu", 0},
    {"deepseek_v3_tiny", "mmap", "none", 0},
    {"qwen3_5_moe_tiny", "pread", "lrfu", 0},  // no batched forward: sessions in turn
    {"qwen3_moe_trained", "pread", "lrfu", 0},
    {"qwen3_moe_trained", "mmap", "none", 0},
    {"deepseek_v3_trained", "pread", "lru", 0},
    {"qwen3_moe_tiny", "pread", "lrfu", 0, "vulkan"},
    {"mixtral_tiny", "mmap", "lru", 0, "vulkan"},
    {"deepseek_v3_tiny", "pread", "lrfu", 0, "vulkan"},
    {"qwen3_moe_trained", "pread", "lrfu", 0, "vulkan"},
};
INSTANTIATE_TEST_SUITE_P(Tiers, BatchEval, ::testing::ValuesIn(kSetups), setup_name);

// The point of batching: with no expert cache, a decode step of two sequences that route
// alike reads each expert once, not twice.
TEST(BatchEvalIo, SharedExpertsAreReadOnce) {
    const mst::ModelHandle model = load({"qwen3_moe_tiny", "pread", "none", 0});
    const std::vector<int32_t> prompt = {5, 9, 13, 2};
    mst::SessionHandle a(model, ctx(32)), b(model, ctx(32));
    mst::eval_batch({&a, &b}, {prompt, prompt});
    const uint64_t before = model.cache_stats(-1).bytes_read;
    a.eval({7});
    const uint64_t one = model.cache_stats(-1).bytes_read - before;
    ASSERT_GT(one, 0u);
    a.trim(prompt.size());
    const uint64_t before_batch = model.cache_stats(-1).bytes_read;
    mst::eval_batch({&a, &b}, {{7}, {7}});
    EXPECT_EQ(model.cache_stats(-1).bytes_read - before_batch, one);
    // Each session is counted half of what was read.
    EXPECT_EQ(a.stats().expert_bytes_read + b.stats().expert_bytes_read,
              model.cache_stats(-1).bytes_read);
}

class BatchEvalErrors : public ::testing::Test {
protected:
    mst::ModelHandle model{mst::test::data_path("qwen3_moe_tiny")};
    mst::SessionHandle a{model, ctx(8)}, b{model, ctx(8)};
    const std::vector<int32_t> few = {1, 2, 3};

    mst_status call(std::vector<mst_session *> sessions, std::vector<std::vector<int32_t>> tokens) {
        std::vector<const int32_t *> lists;
        std::vector<size_t> counts;
        for (const auto &t : tokens) {
            lists.push_back(t.data());
            counts.push_back(t.size());
        }
        return mst_sessions_eval_batch(sessions.data(), lists.data(), counts.data(), sessions.size());
    }
    void expect_untouched() {
        EXPECT_EQ(a.n_past(), 0u);
        EXPECT_EQ(b.n_past(), 0u);
    }
};

TEST_F(BatchEvalErrors, SessionsOfAnotherModel) {
    mst::ModelHandle other(mst::test::data_path("qwen3_moe_tiny"));
    mst::SessionHandle c(other, ctx(8));
    EXPECT_EQ(call({a.get(), c.get()}, {few, few}), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("sessions[1] belongs to another model"), std::string::npos)
        << mst_last_error();
    expect_untouched();
    EXPECT_EQ(c.n_past(), 0u);
}

TEST_F(BatchEvalErrors, SessionTwice) {
    EXPECT_EQ(call({a.get(), b.get(), a.get()}, {few, few, few}), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("sessions[2] is sessions[0] again"), std::string::npos)
        << mst_last_error();
    expect_untouched();
}

TEST_F(BatchEvalErrors, OverflowingContextNamesTheSession) {
    EXPECT_EQ(call({a.get(), b.get()}, {few, {1, 2, 3, 4, 5, 6, 7, 8, 9}}), MST_ERR_CONTEXT_FULL);
    EXPECT_NE(std::string(mst_last_error()).find("session 1 of the batch"), std::string::npos) << mst_last_error();
    expect_untouched();
}

TEST_F(BatchEvalErrors, BadTokensAndArguments) {
    EXPECT_EQ(call({a.get(), b.get()}, {few, {}}), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("session 1"), std::string::npos) << mst_last_error();
    EXPECT_EQ(call({a.get(), b.get()}, {few, {1, -4}}), MST_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(call({a.get(), nullptr}, {few, few}), MST_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(mst_sessions_eval_batch(nullptr, nullptr, nullptr, 0), MST_ERR_INVALID_ARGUMENT);
    mst_session *one[] = {a.get()};
    const int32_t *lists[] = {few.data()};
    const size_t counts[] = {few.size()};
    EXPECT_EQ(mst_sessions_eval_batch(one, lists, counts, 0), MST_ERR_INVALID_ARGUMENT);
    expect_untouched();
    EXPECT_EQ(call({a.get(), b.get()}, {few, few}), MST_OK);
    EXPECT_EQ(a.n_past(), 3u);
}

// mst_generate on three threads through one batcher: each generation's tokens are those it
// gets alone, and the steps held several sequences.
TEST(Batcher, ThreadsGenerateAsAlone) {
    const mst::ModelHandle model(mst::test::data_path("qwen3_moe_tiny"));
    const auto ps = prompts(model.info().n_vocab);
    mst_generate_params gp = mst::generate_params();
    gp.max_tokens = 12;
    gp.ignore_eos = 1;
    gp.sampler.temperature = 0.0f;
    // Batched generations meet at their first token: each waits in its callback until all
    // three are there, so every later step finds the three registered with the batcher
    // (without this a generation that starts first may finish alone on a loaded machine).
    std::atomic<int> at_first_token{0};
    const auto run = [&](const std::vector<int32_t> &prompt, mst_batcher *batcher) {
        mst::SessionHandle session(model, ctx(64));
        mst_generate_params p = gp;
        p.batcher = batcher;
        std::vector<int32_t> out;
        session.generate(prompt, p, [&](int32_t token, std::string_view) {
            if (batcher && out.empty()) {
                at_first_token.fetch_add(1);
                while (at_first_token.load() < int(ps.size())) std::this_thread::yield();
            }
            out.push_back(token);
            return false;
        });
        return out;
    };
    std::vector<std::vector<int32_t>> alone, together(ps.size());
    for (const auto &p : ps) alone.push_back(run(p, nullptr));

    // A gather wait long enough for all three generations to hand in after the meeting,
    // short enough that a step waiting on one still in its callback costs little.
    const mst::BatcherHandle batcher(model, 200000);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < ps.size(); ++i)
        threads.emplace_back([&, i] { together[i] = run(ps[i], batcher.get()); });
    for (std::thread &t : threads) t.join();
    EXPECT_EQ(together, alone);
    const mst_batcher_stats stats = batcher.stats();
    EXPECT_GE(stats.max_sequences, 2u);
    EXPECT_EQ(stats.tokens, ps[0].size() + ps[1].size() + ps[2].size() + 3 * 12u);
    uint64_t by_size = 0;
    for (const uint64_t n : stats.steps_by_size) by_size += n;
    EXPECT_EQ(by_size, stats.steps);
}

TEST(Batcher, AnotherModelsSessionIsRefused) {
    const mst::ModelHandle model(mst::test::data_path("qwen3_moe_tiny"));
    const mst::ModelHandle other(mst::test::data_path("qwen3_moe_tiny"));
    const mst::BatcherHandle batcher(other);
    mst::SessionHandle session(model, ctx(16));
    mst_generate_params gp = mst::generate_params();
    gp.batcher = batcher.get();
    const int32_t prompt[] = {1, 2};
    EXPECT_EQ(mst_generate(session.get(), prompt, 2, &gp, nullptr, nullptr, nullptr), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("another model"), std::string::npos) << mst_last_error();
    EXPECT_EQ(session.n_past(), 0u);
}

}  // namespace
