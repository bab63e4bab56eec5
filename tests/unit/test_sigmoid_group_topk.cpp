// DeepSeek-V3 routing: hand-worked cases for each rule (group limit, correction bias
// steering choice but not weights, renormalisation, scaling, ties, k beyond the eligible
// groups), and random cases against a direct transcription of the reference's steps.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "core/error.h"
#include "expect_error.h"
#include "router/sigmoid_group_topk.h"

namespace mst {
namespace {

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

struct Routed {
    std::vector<int32_t> ids;
    std::vector<float> weights;
};

Routed route(const std::vector<float> &logits, const std::vector<float> &bias, const GroupTopkParams &p) {
    const int64_t n = int64_t(logits.size()) / p.n_experts;
    Routed r{std::vector<int32_t>(size_t(n * p.k)), std::vector<float>(size_t(n * p.k))};
    route_sigmoid_group_topk(logits.data(), bias.empty() ? nullptr : bias.data(), n, p, r.ids.data(), r.weights.data());
    return r;
}

GroupTopkParams params(int32_t experts, int32_t k, int32_t n_group, int32_t topk_group, bool normalize, float scaling) {
    GroupTopkParams p;
    p.n_experts = experts;
    p.k = k;
    p.n_group = n_group;
    p.topk_group = topk_group;
    p.normalize = normalize;
    p.scaling = scaling;
    return p;
}

// Groups of two: {5, -5} holds the best single expert but the weakest pair;
// {2, 2} and {1.5, 1.5} are the two best groups.
const std::vector<float> kLogits = {5.0f, -5.0f, 2.0f, 2.0f, 1.5f, 1.5f, 0.0f, 0.0f};

TEST(SigmoidGroupTopk, OnlyTheBestGroupsAreEligible) {
    const Routed r = route(kLogits, {}, params(8, 2, 4, 2, true, 2.5f));
    EXPECT_EQ(r.ids, (std::vector<int32_t>{2, 3}));  // equal scores: lower id first
    EXPECT_FLOAT_EQ(r.weights[0], 1.25f);
    EXPECT_FLOAT_EQ(r.weights[1], 1.25f);
}

TEST(SigmoidGroupTopk, WithoutGroupLimitTheBestExpertWins) {
    const Routed r = route(kLogits, {}, params(8, 2, 1, 1, false, 1.0f));
    EXPECT_EQ(r.ids, (std::vector<int32_t>{0, 2}));
    EXPECT_FLOAT_EQ(r.weights[0], sigmoid(5.0f));
    EXPECT_FLOAT_EQ(r.weights[1], sigmoid(2.0f));
}

TEST(SigmoidGroupTopk, BiasSteersChoiceButNotWeights) {
    std::vector<float> bias(8, 0.0f);
    bias[4] = 1.0f;
    const Routed r = route(kLogits, bias, params(8, 2, 4, 2, true, 2.0f));
    EXPECT_EQ(r.ids, (std::vector<int32_t>{4, 2}));
    const float s4 = sigmoid(1.5f), s2 = sigmoid(2.0f);
    EXPECT_FLOAT_EQ(r.weights[0], s4 / (s4 + s2) * 2.0f);
    EXPECT_FLOAT_EQ(r.weights[1], s2 / (s4 + s2) * 2.0f);
}

TEST(SigmoidGroupTopk, UnnormalisedWeightsAreScaledScores) {
    const Routed r = route(kLogits, {}, params(8, 3, 4, 2, false, 3.0f));
    EXPECT_EQ(r.ids, (std::vector<int32_t>{2, 3, 4}));
    EXPECT_FLOAT_EQ(r.weights[2], sigmoid(1.5f) * 3.0f);
}

TEST(SigmoidGroupTopk, KBeyondTheEligibleGroupsTakesOthersByLowestId) {
    const Routed r = route(kLogits, {}, params(8, 4, 4, 1, false, 1.0f));
    EXPECT_EQ(r.ids, (std::vector<int32_t>{2, 3, 0, 1}));
}

TEST(SigmoidGroupTopk, GroupsOfOneUseTheirOnlyScore) {
    const Routed r = route({0.1f, 0.3f, 0.2f, -1.0f}, {}, params(4, 1, 4, 2, true, 1.0f));
    EXPECT_EQ(r.ids, (std::vector<int32_t>{1}));
    EXPECT_FLOAT_EQ(r.weights[0], 1.0f);
}

// The reference's steps, one by one, on whole arrays.
Routed transcription(const std::vector<float> &logits, const std::vector<float> &bias, const GroupTopkParams &p) {
    const int64_t n = int64_t(logits.size()) / p.n_experts;
    const int32_t per = p.n_experts / p.n_group;
    Routed out;
    for (int64_t t = 0; t < n; ++t) {
        std::vector<float> scores(size_t(p.n_experts)), choice(size_t(p.n_experts));
        for (int32_t e = 0; e < p.n_experts; ++e) {
            scores[size_t(e)] = sigmoid(logits[size_t(t * p.n_experts + e)]);
            choice[size_t(e)] = scores[size_t(e)] + bias[size_t(e)];
        }
        std::vector<float> group(size_t(p.n_group));
        for (int32_t g = 0; g < p.n_group; ++g) {
            std::vector<float> members(choice.begin() + g * per, choice.begin() + (g + 1) * per);
            std::sort(members.rbegin(), members.rend());
            group[size_t(g)] = members[0] + members[1];
        }
        std::vector<int32_t> order(size_t(p.n_group));
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(),
                         [&](int32_t a, int32_t b) { return group[size_t(a)] > group[size_t(b)]; });
        std::vector<float> masked(size_t(p.n_experts), -INFINITY);
        for (int32_t j = 0; j < p.topk_group; ++j)
            for (int32_t e = order[size_t(j)] * per; e < (order[size_t(j)] + 1) * per; ++e)
                masked[size_t(e)] = choice[size_t(e)];
        std::vector<int32_t> experts(size_t(p.n_experts));
        std::iota(experts.begin(), experts.end(), 0);
        std::stable_sort(experts.begin(), experts.end(),
                         [&](int32_t a, int32_t b) { return masked[size_t(a)] > masked[size_t(b)]; });
        float sum = 0.0f;
        for (int32_t j = 0; j < p.k; ++j) sum += scores[size_t(experts[size_t(j)])];
        for (int32_t j = 0; j < p.k; ++j) {
            out.ids.push_back(experts[size_t(j)]);
            const float w = scores[size_t(experts[size_t(j)])];
            out.weights.push_back((p.normalize ? w / (sum + 1e-20f) : w) * p.scaling);
        }
    }
    return out;
}

TEST(SigmoidGroupTopk, RandomCasesMatchTheReferenceSteps) {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 2.0f);
    struct Case {
        int32_t experts, k, n_group, topk_group;
        bool normalize;
        float scaling;
    };
    for (const Case c : {Case{16, 4, 4, 2, true, 2.5f}, Case{24, 4, 1, 1, true, 2.827f}, Case{64, 8, 8, 4, true, 2.5f},
                         Case{12, 5, 3, 1, false, 1.0f}, Case{32, 2, 8, 8, true, 1.0f}}) {
        const GroupTopkParams p = params(c.experts, c.k, c.n_group, c.topk_group, c.normalize, c.scaling);
        std::vector<float> logits(size_t(50 * c.experts)), bias(size_t(c.experts));
        for (float &v : logits) v = normal(rng);
        for (float &v : bias) v = normal(rng) * 0.1f;
        const Routed got = route(logits, bias, p), want = transcription(logits, bias, p);
        EXPECT_EQ(got.ids, want.ids) << c.experts;
        EXPECT_EQ(got.weights, want.weights) << c.experts;
    }
}

TEST(SigmoidGroupTopk, RejectsInconsistentParams) {
    const std::vector<float> logits(8);
    for (const GroupTopkParams &p : {params(8, 2, 3, 1, true, 1.0f), params(8, 9, 1, 1, true, 1.0f),
                                     params(8, 2, 4, 5, true, 1.0f), params(8, 0, 1, 1, true, 1.0f)})
        test::expect_error([&] { route(logits, {}, p); }, MST_ERR_INVALID_ARGUMENT, {"group top-k routing"});
}

}  // namespace
}  // namespace mst
