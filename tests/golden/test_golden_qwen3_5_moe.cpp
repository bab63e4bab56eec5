// Qwen3.5 MoE and Qwen3-Next (one implementation) against reference logits from Hugging
// Face transformers: the project's own datasets (tests/data, made by
// tests/reference/make_reference_archs.py: the text model, the multimodal wrapper layout
// with fused experts and ignored vision / MTP tensors, and Qwen3-Next's fused projections)
// and, when present, the independent shared fixture.
//
// Both references run prefill through the chunked form of the gated delta rule and
// decode through the recurrent one; moestream runs the recurrent form for both, so the
// prefill comparison also checks that the two forms agree.
//
// The shared fixture was computed with RoPE frequencies rounded to bf16; moestream keeps
// them in float32, as the project's own references do (see test_golden_qwen3_moe.cpp).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "golden.h"
#include "golden_backends.h"
#include "moestream.hpp"
#include "test_paths.h"

namespace {

using mst::test::Golden;

constexpr double kLogitTolerance = 1e-3;
constexpr double kRowTolerance = 5e-3;

struct Dataset {
    std::string name;
    std::string dir;  // "" when an optional dataset is absent
    bool optional;    // the shared fixture may be absent; the project's data may not
    std::string backend = "cpu";  // golden_suite::with_backends
};

std::vector<Dataset> datasets() {
    return {
        {"qwen3_5_moe_tiny", mst::test::data_path("qwen3_5_moe_tiny"), false},
        {"qwen3_5_moe_wrapped", mst::test::data_path("qwen3_5_moe_wrapped"), false},
        {"qwen3_next_tiny", mst::test::data_path("qwen3_next_tiny"), false},
        {"shared_fixture", mst::test::shared_path("fixtures/qwen3_5_moe"), true},
    };
}

class GoldenQwen35 : public ::testing::TestWithParam<Dataset> {
protected:
    void SetUp() override {
        if (GetParam().dir.empty()) GTEST_SKIP() << "../shared/fixtures/qwen3_5_moe is absent";
        if (const std::string why = golden_suite::backend_unavailable(GetParam().backend); !why.empty()) GTEST_SKIP() << why;
        golden_ = mst::test::load_golden(GetParam().dir + "/golden.safetensors");
        ASSERT_FALSE(golden_.input_ids.empty()) << GetParam().dir;
    }

    // The shared fixture's `logits` and `greedy_ids` were made with bf16-rounded RoPE
    // frequencies (its `logits_topk2` with float32 ones): loaded to match.
    mst::ModelHandle load(uint64_t cache_bytes = 1ull << 30, int32_t experts_per_token = 0, bool bf16_rope = true) {
        mst_model_params p = mst::model_params();
        p.backend = GetParam().backend.c_str();
        p.expert_cache_bytes = cache_bytes;
        p.experts_per_token = experts_per_token;
        p.rope_bf16_frequencies = bf16_rope && GetParam().optional;
        return mst::ModelHandle(GetParam().dir, p);
    }

    std::vector<float> prefill_logits(const mst::ModelHandle &model, uint32_t n_batch) {
        mst_session_params sp = mst::session_params();
        sp.all_logits = 1;
        sp.n_batch = n_batch;
        mst::SessionHandle session(model, sp);
        session.eval(golden_.input_ids);
        return all_logits(session);
    }

    std::vector<float> all_logits(const mst::SessionHandle &session) {
        const float *logits = nullptr;
        size_t rows = 0, vocab = 0;
        mst::check(mst_session_all_logits(session.get(), &logits, &rows, &vocab));
        EXPECT_EQ(rows, golden_.input_ids.size());
        EXPECT_EQ(int64_t(vocab), golden_.vocab);
        return std::vector<float>(logits, logits + rows * vocab);
    }

    void expect_matches(const std::vector<float> &got, const std::vector<float> &want) {
        ASSERT_EQ(got.size(), want.size());
        const int64_t rows = int64_t(want.size()) / golden_.vocab;
        const double err = mst::test::relative_error(got.data(), want.data(), int64_t(want.size()));
        const double row_err = mst::test::max_row_relative_error(got.data(), want.data(), rows, golden_.vocab);
        EXPECT_LT(err, golden_suite::backend_tolerance(GetParam().backend, kLogitTolerance)) << GetParam().name;
        EXPECT_LT(row_err, kRowTolerance) << GetParam().name;
        RecordProperty("relative_error", std::to_string(err));
        RecordProperty("max_row_relative_error", std::to_string(row_err));
    }

    Golden golden_;
};

TEST_P(GoldenQwen35, PrefillLogitsMatchReference) {
    const mst::ModelHandle model = load();
    expect_matches(prefill_logits(model, 0), golden_.logits());
}

TEST_P(GoldenQwen35, TokenByTokenDecodeMatchesReference) {
    // n_batch 1: every position goes through the single-token path, the recurrent state
    // and the convolution history carried from call to call.
    const mst::ModelHandle model = load();
    expect_matches(prefill_logits(model, 1), golden_.logits());
}

TEST_P(GoldenQwen35, UnevenBatchesMatchReference) {
    // Batches of 5 and of 2 (shorter than the convolution's history of 3) continue the state
    // from the middle of a batch.
    const mst::ModelHandle model = load();
    expect_matches(prefill_logits(model, 5), golden_.logits());
    expect_matches(prefill_logits(model, 2), golden_.logits());
}

TEST_P(GoldenQwen35, GreedyIdsMatchReference) {
    const mst::ModelHandle model = load();
    mst::SessionHandle session(model);
    mst_generate_params gp = mst::generate_params();
    gp.max_tokens = int32_t(golden_.greedy_ids.size());
    gp.sampler.temperature = 0.0f;
    gp.ignore_eos = 1;
    std::vector<int32_t> ids;
    const mst_stop_reason reason = session.generate(golden_.input_ids, gp, [&](int32_t token, std::string_view) {
        if (token >= 0) ids.push_back(token);
        return false;
    });
    EXPECT_EQ(reason, MST_STOP_MAX_TOKENS);
    EXPECT_EQ(ids, golden_.greedy_ids);
}

TEST_P(GoldenQwen35, DecodeLogitsMatchReference) {
    auto it = golden_.matrices.find("logits_decode");
    if (it == golden_.matrices.end()) {
        ASSERT_TRUE(GetParam().optional) << "project dataset lacks logits_decode";
        GTEST_SKIP() << "dataset has no logits_decode";
    }
    const mst::ModelHandle model = load();
    mst::SessionHandle session(model);
    session.eval(golden_.input_ids);
    std::vector<float> got;
    for (size_t i = 0; i < golden_.greedy_ids.size(); ++i) {
        const std::vector<float> row = session.logits();
        got.insert(got.end(), row.begin(), row.end());
        session.eval({golden_.greedy_ids[i]});
    }
    expect_matches(got, it->second);
}

TEST_P(GoldenQwen35, StreamingWithTinyCacheGivesSameLogits) {
    const mst::ModelHandle uncached = load(0);
    expect_matches(prefill_logits(uncached, 0), golden_.logits());
    mst::SessionHandle session(uncached);
    session.eval(golden_.input_ids);
    const mst_session_stats stats = session.stats();
    EXPECT_GT(stats.expert_bytes_read, 0u);
    EXPECT_EQ(stats.expert_cache_hits, 0u);
    EXPECT_EQ(uncached.memory().expert_cache_bytes, 0u);
}

TEST_P(GoldenQwen35, LowerExpertBudgetMatchesReference) {
    auto it = golden_.matrices.find("logits_topk2");
    ASSERT_NE(it, golden_.matrices.end()) << "dataset has no logits_topk2";
    const mst::ModelHandle model = load(1ull << 30, 2, false);
    EXPECT_EQ(model.info().experts_per_token, 2);
    expect_matches(prefill_logits(model, 0), it->second);
}

TEST_P(GoldenQwen35, ResetStartsTheRecurrentStateOver) {
    // After a reset, evaluation starts at position 0 again: the linear-attention state must
    // start from zeros, not from what the previous prompt left.
    const mst::ModelHandle model = load();
    mst_session_params sp = mst::session_params();
    sp.all_logits = 1;
    mst::SessionHandle session(model, sp);
    session.eval(golden_.input_ids);
    session.eval({golden_.input_ids.front()});
    session.reset();
    session.eval(golden_.input_ids);
    expect_matches(all_logits(session), golden_.logits());
}

TEST_P(GoldenQwen35, TokenizerReproducesPromptIds) {
    const mst::ModelHandle model = load();
    const std::string prompt = model.detokenize(golden_.input_ids);
    EXPECT_EQ(model.tokenize(prompt), golden_.input_ids);
}

INSTANTIATE_TEST_SUITE_P(Datasets, GoldenQwen35, ::testing::ValuesIn(golden_suite::with_backends(datasets())),
                         [](const auto &param_info) { return param_info.param.name; });

}  // namespace
