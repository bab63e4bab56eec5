// The prefetch rule: which of the predictor's k guesses are read ahead (by confidence share,
// with a lower bar for the previous token's experts, and a top-m cap), and the precision and
// recall that rule gets on a trace.
#include <gtest/gtest.h>

#include <vector>

#include "experts/prefetch_rule.h"
#include "router/routing_stats.h"

namespace mst {
namespace {

std::vector<int32_t> select(const PrefetchRule &rule, std::vector<int32_t> ids, std::vector<float> weights,
                            std::vector<int32_t> previous = {}) {
    std::vector<int32_t> out;
    select_prefetch(rule, ids, weights, previous, out);
    return out;
}

TEST(PrefetchRule, KeepsEveryGuessByDefaultShareOffHighestFirst) {
    EXPECT_EQ(select(PrefetchRule{}, {3, 7, 1, -1}, {0.1f, 0.6f, 0.3f, 0.0f}), (std::vector<int32_t>{7, 1, 3}));
}

TEST(PrefetchRule, ShareBarDropsUnsureGuesses) {
    // Shares 0.5, 0.3, 0.15, 0.05 of the guessed weight (which need not sum to 1).
    const std::vector<int32_t> ids = {4, 5, 6, 7};
    const std::vector<float> w = {1.0f, 0.6f, 0.3f, 0.1f};
    EXPECT_EQ(select(PrefetchRule{0.14f, 0.14f, 0}, ids, w), (std::vector<int32_t>{4, 5, 6}));
    EXPECT_EQ(select(PrefetchRule{0.2f, 0.2f, 0}, ids, w), (std::vector<int32_t>{4, 5}));
    // The previous token chose 7: its lower bar keeps it, and 6 (not reused) still goes.
    EXPECT_EQ(select(PrefetchRule{0.2f, 0.04f, 0}, ids, w, {7, 9}), (std::vector<int32_t>{4, 5, 7}));
    EXPECT_EQ(select(PrefetchRule{0.0f, 0.0f, 2}, ids, w), (std::vector<int32_t>{4, 5}));
}

TEST(PrefetchRule, GuessesWithoutWeightsCountAsSure) {
    EXPECT_EQ(select(PrefetchRule{0.5f, 0.5f, 0}, {2, 3}, {0.0f, 0.0f}), (std::vector<int32_t>{2, 3}));
}

TEST(PrefetchRule, DefaultIsTheMeasuredConfidenceBar) {
    const PrefetchRule r = default_prefetch_rule();
    EXPECT_FLOAT_EQ(r.min_share, 0.14f);  // bench/RESULTS.md "Prefetch: a confidence rule"
    EXPECT_LE(r.reuse_min_share, r.min_share);
}

// Two tokens, one layer, k = 2: the guesses carry weights, the rule trades recall for
// precision, and the previous token's choice lowers the bar.
TEST(PrefetchRule, PrecisionAndRecallOnATrace) {
    RouteTraceData t = RouteTraceData::sized(8, 2, 1, 2, {0, 1});
    const int32_t chosen[2][2][2] = {{{0, 1}, {2, 3}}, {{0, 1}, {2, 4}}};
    for (int64_t tok = 0; tok < 2; ++tok)
        for (size_t s = 0; s < 2; ++s)
            for (size_t j = 0; j < 2; ++j) t.ids[t.at(tok, s) + j] = chosen[tok][s][j];
    // Guesses for slot 1: token 0 {2: sure, 5: unsure}, token 1 {4: unsure, 3: sure}.
    const int32_t guess[2][2] = {{2, 5}, {4, 3}};
    const float weight[2][2] = {{0.9f, 0.1f}, {0.2f, 0.8f}};
    for (int64_t tok = 0; tok < 2; ++tok)
        for (size_t j = 0; j < 2; ++j) {
            t.guesses[t.guess_at(1, tok, 1) + j] = guess[tok][j];
            t.guess_weights[t.guess_at(1, tok, 1) + j] = weight[tok][j];
        }
    const PredictionStats all = prediction_stats(t, 1, PrefetchRule{});
    EXPECT_EQ(all.guessed, 4u);
    EXPECT_EQ(all.correct, 2u);  // 2 and 4
    const PredictionStats sure = prediction_stats(t, 1, PrefetchRule{0.5f, 0.5f, 0});
    EXPECT_EQ(sure.guessed, 2u);  // 2 (right) and 3 (wrong: token 1 chose 2 and 4)
    EXPECT_EQ(sure.correct, 1u);
    EXPECT_EQ(sure.chosen, 4u);
    // Token 0 chose 3 at slot 1, so token 1's guess 3 gets the lower bar; 4 stays unsure.
    const PredictionStats reuse = prediction_stats(t, 1, PrefetchRule{0.9f, 0.5f, 0});
    EXPECT_EQ(reuse.guessed, 2u);  // token 0: 2 (0.9); token 1: 3 (0.8, reused)
    EXPECT_EQ(reuse.correct, 1u);
    // Only the second token: the range selects tokens.
    EXPECT_EQ(prediction_stats(t, 1, PrefetchRule{}, 1, 2).guessed, 2u);
}

}  // namespace
}  // namespace mst
