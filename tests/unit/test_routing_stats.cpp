// Routing statistics on hand-made traces whose entropy, reuse, layer-to-layer information
// and prefetch precision are known.
#include <gtest/gtest.h>

#include "router/routing_stats.h"

namespace mst {
namespace {

// Four experts, top-2, two layers, T tokens. Layer 0 alternates {0,1} / {2,3}; layer 1
// mirrors it ({2,3} / {0,1}), so each layer's choice fixes the other's pair.
RouteTraceData alternating(int64_t T) {
    RouteTraceData t = RouteTraceData::sized(4, 2, 1, T, {0, 1});
    for (int64_t tok = 0; tok < T; ++tok) {
        const int32_t a = tok % 2 ? 2 : 0, b = tok % 2 ? 0 : 2;
        t.ids[t.at(tok, 0)] = a;
        t.ids[t.at(tok, 0) + 1] = a + 1;
        t.ids[t.at(tok, 1)] = b;
        t.ids[t.at(tok, 1) + 1] = b + 1;
        // The guess for layer 1: right on even tokens, the other pair on odd ones.
        t.guesses[t.guess_at(1, tok, 1)] = 2;
        t.guesses[t.guess_at(1, tok, 1) + 1] = 3;
    }
    return t;
}

TEST(RoutingStats, EntropyReuseAndDistances) {
    const int64_t T = 100;
    const RoutingStats s = routing_stats(alternating(T));
    ASSERT_EQ(s.layers.size(), 2u);
    const LayerRoutingStats &l = s.layers[0];
    EXPECT_NEAR(l.entropy_bits, 2.0, 1e-12);  // four experts, equally used
    EXPECT_NEAR(l.max_share, 0.25, 1e-12);
    EXPECT_EQ(l.unused, 0);
    EXPECT_NEAR(l.reuse_previous, 0.0, 1e-12);     // never the previous token's pair
    EXPECT_NEAR(l.reuse_independent, 0.5, 1e-12);  // p = 1/2 each: sum p^2 / k = 1 / 2
    EXPECT_NEAR(l.distance_share[1], double(2 * (T - 2)) / double(2 * T), 1e-12);  // two tokens back
    EXPECT_NEAR(l.distance_share[7], 4.0 / double(2 * T), 1e-12);                  // first use
}

TEST(RoutingStats, ConstantRoutingIsAlwaysReused) {
    RouteTraceData t = RouteTraceData::sized(4, 2, 0, 10, {0});
    for (int64_t tok = 0; tok < 10; ++tok) {
        t.ids[t.at(tok, 0)] = 1;
        t.ids[t.at(tok, 0) + 1] = 3;
    }
    const LayerRoutingStats l = routing_stats(t).layers[0];
    EXPECT_NEAR(l.entropy_bits, 1.0, 1e-12);
    EXPECT_EQ(l.unused, 2);
    EXPECT_NEAR(l.reuse_previous, 1.0, 1e-12);
    EXPECT_NEAR(l.reuse_independent, 1.0, 1e-12);
    EXPECT_NEAR(l.distance_share[0], 0.9, 1e-12);
}

TEST(RoutingStats, MutualInformationOfMirroredLayers) {
    // Given layer 0's expert, layer 1's pair is known (1 bit of its 2): MI = 1 bit.
    const RoutingStats s = routing_stats(alternating(64));
    ASSERT_EQ(s.pairs.size(), 1u);
    EXPECT_NEAR(s.pairs[0].mutual_info_bits, 1.0, 1e-9);
    EXPECT_NEAR(s.pairs[0].to_entropy_bits, 2.0, 1e-12);
}

TEST(RoutingStats, PredictionPrecisionAndRecall) {
    const int64_t T = 10;
    const RoutingStats s = routing_stats(alternating(T));
    ASSERT_EQ(s.predictions.size(), 1u);
    const PredictionStats &p = s.predictions[0];
    EXPECT_EQ(p.guessed, uint64_t(2 * T));
    EXPECT_EQ(p.chosen, uint64_t(2 * T));
    EXPECT_EQ(p.correct, uint64_t(T));  // the even tokens
    EXPECT_NEAR(p.precision(), 0.5, 1e-12);
    EXPECT_NEAR(p.recall(), 0.5, 1e-12);
}

}  // namespace
}  // namespace mst
