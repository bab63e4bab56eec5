// Expert-budget rules on hand-made router outputs, the per-session budget against the
// reference's lowered top-k, and `moestream eval`'s perplexity against one computed here.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_eval.h"
#include "golden.h"
#include "moestream.hpp"
#include "core/error.h"
#include "router/budget_policy.h"
#include "session/quality_metrics.h"
#include "test_paths.h"

namespace {

using mst::BudgetPolicy;
using mst::BudgetStats;

struct Routed {
    std::vector<int32_t> ids;
    std::vector<float> weights;
};

Routed apply(const BudgetPolicy &policy, Routed r, bool renormalized, BudgetStats &stats,
             const std::function<bool(int32_t)> &resident = [](int32_t) { return true; }) {
    mst::apply_budget_policy(policy, 1, int32_t(r.ids.size()), r.ids.data(), r.weights.data(), renormalized, resident,
                             stats);
    return r;
}

TEST(BudgetPolicy, OffChangesNothing) {
    BudgetStats stats;
    const Routed in{{3, 1, 7}, {0.5f, 0.3f, 0.2f}};
    const Routed out = apply({}, in, true, stats);
    EXPECT_EQ(out.ids, in.ids);
    EXPECT_EQ(out.weights, in.weights);
    EXPECT_EQ(stats.experts_chosen, 3u);
    EXPECT_EQ(stats.experts_skipped, 0u);
}

TEST(BudgetPolicy, MinWeightDropsLightExpertsAndRenormalises) {
    BudgetStats stats;
    BudgetPolicy p;
    p.min_weight = 0.25f;
    const Routed out = apply(p, {{3, 1, 7, 2}, {0.4f, 0.3f, 0.2f, 0.1f}}, true, stats);
    EXPECT_EQ(out.ids, (std::vector<int32_t>{3, 1, -1, -1}));
    EXPECT_NEAR(out.weights[0], 0.4f / 0.7f, 1e-6);
    EXPECT_NEAR(out.weights[1], 0.3f / 0.7f, 1e-6);
    EXPECT_EQ(stats.experts_skipped, 2u);
    EXPECT_NEAR(stats.skipped_mass, 0.3, 1e-6);
}

TEST(BudgetPolicy, WithoutRenormalisationKeptWeightsStay) {
    BudgetStats stats;
    BudgetPolicy p;
    p.min_weight = 0.25f;
    // Unnormalised router weights (as a model without norm_topk_prob gives them).
    const Routed out = apply(p, {{3, 1, 7}, {0.2f, 0.1f, 0.02f}}, false, stats);
    EXPECT_EQ(out.ids, (std::vector<int32_t>{3, 1, -1}));
    EXPECT_FLOAT_EQ(out.weights[0], 0.2f);
    EXPECT_FLOAT_EQ(out.weights[1], 0.1f);
}

TEST(BudgetPolicy, ThresholdAboveEveryWeightKeepsTheTopExpert) {
    BudgetStats stats;
    BudgetPolicy p;
    p.min_weight = 1.0f;
    p.mass = 0.0f;
    const Routed out = apply(p, {{5, 6, 9}, {0.2f, 0.5f, 0.3f}}, true, stats);
    EXPECT_EQ(out.ids, (std::vector<int32_t>{-1, 6, -1}));
    EXPECT_NEAR(out.weights[1], 1.0f, 1e-6);
}

TEST(BudgetPolicy, AllWeightInOneExpert) {
    BudgetStats stats;
    BudgetPolicy p;
    p.mass = 0.9f;
    const Routed out = apply(p, {{0, 1, 2}, {1.0f, 0.0f, 0.0f}}, true, stats);
    EXPECT_EQ(out.ids, (std::vector<int32_t>{0, -1, -1}));
    EXPECT_NEAR(stats.skipped_mass, 0.0, 1e-9);
}

TEST(BudgetPolicy, CumulativeMassKeepsTheFewestThatReachIt) {
    BudgetStats stats;
    BudgetPolicy p;
    p.mass = 0.7f;
    const Routed out = apply(p, {{1, 2, 3, 4}, {0.1f, 0.45f, 0.3f, 0.15f}}, true, stats);
    EXPECT_EQ(out.ids, (std::vector<int32_t>{-1, 2, 3, -1}));  // 0.45 + 0.3 reaches 0.7
}

TEST(BudgetPolicy, TiesKeepTheEarlierSlot) {
    BudgetStats stats;
    BudgetPolicy p;
    p.mass = 0.5f;
    const Routed out = apply(p, {{8, 9}, {0.5f, 0.5f}}, true, stats);
    EXPECT_EQ(out.ids, (std::vector<int32_t>{8, -1}));
}

TEST(BudgetPolicy, CacheAwareSkipsOnlyLightExpertsNotInMemory) {
    BudgetStats stats;
    BudgetPolicy p;
    p.cache_skip_below = 0.3f;
    auto resident = [](int32_t e) { return e == 2; };
    const Routed out = apply(p, {{1, 2, 3, 4}, {0.4f, 0.25f, 0.2f, 0.15f}}, true, stats, resident);
    // 1: heavy enough; 2: light but in memory; 3 and 4: light and not in memory.
    EXPECT_EQ(out.ids, (std::vector<int32_t>{1, 2, -1, -1}));
    EXPECT_NEAR(stats.skipped_mass, 0.35, 1e-6);
}

TEST(BudgetPolicy, RejectsOutOfRangeValues) {
    BudgetPolicy p;
    p.min_weight = 1.5f;
    EXPECT_THROW(mst::validate_budget_policy(p), mst::Error);
    mst_expert_budget b;
    mst_expert_budget_default(&b);
    b.mass = -0.1f;
    const mst::ModelHandle model(mst::test::data_path("qwen3_moe_tiny"));
    mst::SessionHandle session(model);
    EXPECT_EQ(mst_session_set_expert_budget(session.get(), &b), MST_ERR_INVALID_ARGUMENT);
    mst_expert_budget_default(&b);
    b.experts_per_token = 99;
    EXPECT_EQ(mst_session_set_expert_budget(session.get(), &b), MST_ERR_INVALID_ARGUMENT);
}

TEST(SessionBudget, LoweredTopKMatchesReferencePerSession) {
    const std::string dir = mst::test::data_path("qwen3_moe_tiny");
    const mst::test::Golden golden = mst::test::load_golden(dir + "/golden.safetensors");
    const mst::ModelHandle model(dir);
    mst_session_params sp = mst::session_params();
    sp.all_logits = 1;
    mst::SessionHandle session(model, sp);
    mst_expert_budget b;
    mst_expert_budget_default(&b);
    b.experts_per_token = 2;
    mst::check(mst_session_set_expert_budget(session.get(), &b));
    session.eval(golden.input_ids);
    const float *logits = nullptr;
    size_t rows = 0, vocab = 0;
    mst::check(mst_session_all_logits(session.get(), &logits, &rows, &vocab));
    const std::vector<float> &want = golden.matrices.at("logits_topk2");
    EXPECT_LT(mst::test::relative_error(logits, want.data(), int64_t(want.size())), 1e-3);
    mst_expert_budget back{};
    back.struct_size = sizeof back;
    mst::check(mst_session_get_expert_budget(session.get(), &back));
    EXPECT_EQ(back.experts_per_token, 2);
}

TEST(SessionBudget, SkippedMassIsReported) {
    const mst::ModelHandle model(mst::test::data_path("qwen3_moe_tiny"));
    mst::SessionHandle session(model);
    mst_expert_budget b;
    mst_expert_budget_default(&b);
    b.mass = 0.5f;
    mst::check(mst_session_set_expert_budget(session.get(), &b));
    session.eval({1, 87, 85, 259, 201});
    const mst_session_stats s = session.stats();
    EXPECT_EQ(s.experts_chosen, 5u * 4u * 2u);  // tokens x top-k x MoE layers
    EXPECT_GT(s.experts_skipped, 0u);
    EXPECT_GT(s.skipped_weight_mass, 0.0);
}

TEST(EvalTool, PerplexityIsExpOfMeanNll) {
    const std::string dir = mst::test::data_path("qwen3_moe_tiny");
    const std::string text = "Experts are small networks. The router sends each token to a few of them, "
                             "and their outputs are mixed by the router's weights.";
    const nlohmann::json out = mst::test::run_cli_eval(MST_CLI_PATH, dir, text, {"--ctx", "16", "--sweep", "4,2"});
    ASSERT_FALSE(out.is_null());

    // The same windows, scored here from the logits.
    const mst::ModelHandle model(dir);
    const std::vector<int32_t> tokens = model.tokenize(text);
    mst_session_params sp = mst::session_params();
    sp.all_logits = 1;
    sp.n_ctx = 16;
    for (const nlohmann::json &r : out["results"]) {
        mst::SessionHandle session(model, sp);
        mst_expert_budget b;
        mst_expert_budget_default(&b);
        b.experts_per_token = r["experts_per_token"].get<int32_t>();
        mst::check(mst_session_set_expert_budget(session.get(), &b));
        double nll = 0.0;
        size_t scored = 0;
        for (size_t first = 0; first + 1 < tokens.size(); first += 16) {
            const std::vector<int32_t> chunk(tokens.begin() + ptrdiff_t(first),
                                             tokens.begin() + ptrdiff_t(std::min(tokens.size(), first + 16)));
            session.reset();
            session.eval(chunk);
            const float *logits = nullptr;
            size_t rows = 0, vocab = 0;
            mst::check(mst_session_all_logits(session.get(), &logits, &rows, &vocab));
            for (size_t t = 0; t + 1 < chunk.size(); ++t) {
                // log-sum-exp by hand, independent of the tool's code
                double m = -1e300, sum = 0.0;
                for (size_t v = 0; v < vocab; ++v) m = std::max(m, double(logits[t * vocab + v]));
                for (size_t v = 0; v < vocab; ++v) sum += std::exp(double(logits[t * vocab + v]) - m);
                nll += m + std::log(sum) - double(logits[t * vocab + size_t(chunk[t + 1])]);
                ++scored;
            }
        }
        EXPECT_EQ(r["tokens_scored"].get<size_t>(), scored);
        EXPECT_NEAR(r["perplexity"].get<double>(), std::exp(nll / double(scored)), 1e-6 * std::exp(nll / double(scored)));
    }
    // The model's own top-k against itself: no divergence, full agreement.
    EXPECT_NEAR(out["results"][0]["kl_mean"].get<double>(), 0.0, 1e-9);
    EXPECT_DOUBLE_EQ(out["results"][0]["top1_agreement"].get<double>(), 1.0);
    EXPECT_GT(out["results"][1]["kl_mean"].get<double>(), 0.0);
}

}  // namespace
