// route_topk_softmax (gpt-oss): the k largest logits, in descending order with ties to the
// lower id, weighted by a softmax over those k logits alone.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "router/topk_softmax.h"

namespace mst {
namespace {

TEST(RouterTopkSoftmax, PicksLargestLogitsAndSoftmaxesThem) {
    const std::vector<float> logits = {0.5f, 3.0f, -1.0f, 2.0f, 2.5f,   // token 0
                                       1.0f, 1.0f, 1.0f, 0.0f, 4.0f};  // token 1: a tie at 1.0
    std::vector<int32_t> ids(6);
    std::vector<float> w(6);
    route_topk_softmax(logits.data(), 2, 5, 3, ids.data(), w.data());
    EXPECT_EQ(ids, (std::vector<int32_t>{1, 4, 3, 4, 0, 1}));
    const double z0 = std::exp(3.0) + std::exp(2.5) + std::exp(2.0);
    EXPECT_NEAR(w[0], std::exp(3.0) / z0, 1e-6);
    EXPECT_NEAR(w[1], std::exp(2.5) / z0, 1e-6);
    EXPECT_NEAR(w[2], std::exp(2.0) / z0, 1e-6);
    const double z1 = std::exp(4.0) + 2 * std::exp(1.0);
    EXPECT_NEAR(w[3], std::exp(4.0) / z1, 1e-6);
    EXPECT_NEAR(w[4], std::exp(1.0) / z1, 1e-6);
    EXPECT_FLOAT_EQ(w[4], w[5]);
}

TEST(RouterTopkSoftmax, LeftOutExpertsDoNotDiluteTheWeights) {
    // Softmax over all experts then top-k would give 1/5 each here; top-k then softmax
    // gives 1/2 each.
    const std::vector<float> logits(5, 0.25f);
    std::vector<int32_t> ids(2);
    std::vector<float> w(2);
    route_topk_softmax(logits.data(), 1, 5, 2, ids.data(), w.data());
    EXPECT_EQ(ids, (std::vector<int32_t>{0, 1}));
    EXPECT_FLOAT_EQ(w[0], 0.5f);
    EXPECT_FLOAT_EQ(w[1], 0.5f);
}

TEST(RouterTopkSoftmax, OneExpertGetsWeightOneEvenForHugeLogits) {
    const std::vector<float> logits = {-1e30f, 1e30f, 0.0f};
    int32_t id = -1;
    float w = 0.0f;
    route_topk_softmax(logits.data(), 1, 3, 1, &id, &w);
    EXPECT_EQ(id, 1);
    EXPECT_EQ(w, 1.0f);
}

}  // namespace
}  // namespace mst
