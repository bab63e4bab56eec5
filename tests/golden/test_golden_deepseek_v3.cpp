// DeepSeek-V3 and Kimi K2 against reference logits from Hugging Face transformers: the
// project's own datasets (tests/data: bf16 DeepSeek-V3, its FP8 form with 128x128 block
// scales whose reference ran on the dequantised float32 weights, and Kimi K2), and the
// independent shared fixtures (skipped when ../shared is absent). Batched prefill takes
// the expanded MLA path and token-by-token decode the absorbed one, so both are checked
// against the reference; a zero-byte expert cache must not change anything.
//
// The shared fixtures' `logits` and `greedy_ids` were computed with RoPE frequencies
// rounded to bf16 (what transformers holds for a model in bf16), their `logits_topk2`
// with float32 ones. The tests load each with the matching `rope_bf16_frequencies`, so
// every matrix is held to the same bound and the greedy ids must match exactly (with
// float32 frequencies the fixtures' logits are 1.4e-3 and 2.1e-3 away through YaRN).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "format/model_config.h"
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
    std::string dir;                   // "" for an absent shared fixture; the project's own data must exist
    bool bf16_rope_reference = false;  // logits and greedy_ids made with bf16-rounded RoPE frequencies
    std::string backend = "cpu";       // golden_suite::with_backends
};

std::vector<Dataset> datasets() {
    return {
        {"deepseek_v3_tiny", mst::test::data_path("deepseek_v3_tiny")},
        {"deepseek_v3_fp8", mst::test::data_path("deepseek_v3_fp8")},
        {"kimi_k2_tiny", mst::test::data_path("kimi_k2_tiny")},
        {"shared_deepseek_v3", mst::test::shared_path("fixtures/deepseek_v3"), true},
        {"shared_kimi_k2", mst::test::shared_path("fixtures/kimi_k2"), true},
    };
}

class GoldenDeepseekV3 : public ::testing::TestWithParam<Dataset> {
protected:
    void SetUp() override {
        if (GetParam().dir.empty()) GTEST_SKIP() << GetParam().name << " is absent";
        if (const std::string why = golden_suite::backend_unavailable(GetParam().backend); !why.empty()) GTEST_SKIP() << why;
        ASSERT_TRUE(std::filesystem::exists(GetParam().dir + "/golden.safetensors"))
            << GetParam().dir << " is missing: the project's own data must be present";
        golden_ = mst::test::load_golden(GetParam().dir + "/golden.safetensors");
        ASSERT_FALSE(golden_.input_ids.empty());
    }

    // bf16_rope: load as the reference's `logits` were made (see the top of this file).
    mst::ModelHandle load(uint64_t cache_bytes = 1ull << 30, int32_t experts_per_token = 0, bool bf16_rope = true) {
        mst_model_params p = mst::model_params();
        p.backend = GetParam().backend.c_str();
        p.expert_cache_bytes = cache_bytes;
        p.experts_per_token = experts_per_token;
        p.rope_bf16_frequencies = bf16_rope && GetParam().bf16_rope_reference;
        return mst::ModelHandle(GetParam().dir, p);
    }

    std::vector<float> prefill_logits(const mst::ModelHandle &model, uint32_t n_batch) {
        mst_session_params sp = mst::session_params();
        sp.all_logits = 1;
        sp.n_batch = n_batch;
        mst::SessionHandle session(model, sp);
        session.eval(golden_.input_ids);
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
        RecordProperty("relative_error", fmt::format("{:.3g}", err));
        RecordProperty("max_row_relative_error", fmt::format("{:.3g}", row_err));
    }
    void expect_matches_logits(const std::vector<float> &got) { expect_matches(got, golden_.logits()); }

    Golden golden_;
};

TEST_P(GoldenDeepseekV3, PrefillLogitsMatchReference) {
    const mst::ModelHandle model = load();
    expect_matches_logits(prefill_logits(model, 0));
}

TEST_P(GoldenDeepseekV3, TokenByTokenDecodeMatchesReference) {
    const mst::ModelHandle model = load();
    expect_matches_logits(prefill_logits(model, 1));
}

TEST_P(GoldenDeepseekV3, UnevenBatchesMatchReference) {
    const mst::ModelHandle model = load();
    expect_matches_logits(prefill_logits(model, 5));
}

TEST_P(GoldenDeepseekV3, GreedyIdsMatchReference) {
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

TEST_P(GoldenDeepseekV3, DecodeLogitsMatchReference) {
    auto it = golden_.matrices.find("logits_decode");
    if (it == golden_.matrices.end()) GTEST_SKIP() << "dataset has no logits_decode";
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

TEST_P(GoldenDeepseekV3, StreamingWithZeroCacheGivesSameLogits) {
    const mst::ModelHandle uncached = load(0);
    expect_matches_logits(prefill_logits(uncached, 0));
    mst::SessionHandle session(uncached);
    session.eval(golden_.input_ids);
    EXPECT_GT(session.stats().expert_bytes_read, 0u);
    EXPECT_EQ(session.stats().expert_cache_hits, 0u);
    EXPECT_EQ(uncached.memory().expert_cache_bytes, 0u);
}

TEST_P(GoldenDeepseekV3, LowerExpertBudgetMatchesReference) {
    auto it = golden_.matrices.find("logits_topk2");
    if (it == golden_.matrices.end()) GTEST_SKIP() << "dataset has no logits_topk2";
    const mst::ModelHandle model = load(1ull << 30, 2, false);  // made with float32 frequencies
    EXPECT_EQ(model.info().experts_per_token, 2);
    expect_matches(prefill_logits(model, 0), it->second);
}

TEST_P(GoldenDeepseekV3, KvCacheHoldsLatentsNotPerHeadKeysAndValues) {
    const mst_model_info info = load().info();
    const mst::ModelConfig c = mst::parse_model_config_file(GetParam().dir + "/config.json");
    const uint64_t latent = c.raw.at("kv_lora_rank").get<uint64_t>(),
                   rope = c.raw.at("qk_rope_head_dim").get<uint64_t>();
    const uint64_t qk = c.raw.at("qk_nope_head_dim").get<uint64_t>() + rope, v = c.raw.at("v_head_dim").get<uint64_t>();
    EXPECT_EQ(info.kv_cache_bytes_per_token, (latent + rope) * 4 * uint64_t(c.n_layers));
    EXPECT_EQ(info.kv_cache_full_bytes_per_token, uint64_t(c.n_heads) * (qk + v) * 4 * uint64_t(c.n_layers));
}

TEST_P(GoldenDeepseekV3, TokenizerReproducesPromptIds) {
    const mst::ModelHandle model = load();
    EXPECT_EQ(model.tokenize(model.detokenize(golden_.input_ids)), golden_.input_ids);
}

INSTANTIATE_TEST_SUITE_P(Datasets, GoldenDeepseekV3, ::testing::ValuesIn(golden_suite::with_backends(datasets())),
                         [](const auto &param_info) { return param_info.param.name; });

}  // namespace
