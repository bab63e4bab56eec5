// What a routing trace says about the routing itself: how evenly each layer uses its
// experts, how often a token reuses the previous tokens' experts (what a cache lives on),
// how much one layer's choice tells about the next one's, and how well the prefetcher's
// guesses match what the router then chose.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "experts/prefetch_rule.h"
#include "router/route_trace_file.h"

namespace mst {

struct LayerRoutingStats {
    int32_t layer = 0;
    double entropy_bits = 0.0;  // of the expert-usage distribution
    double max_share = 0.0;     // the most used expert's share of the choices
    int32_t unused = 0;         // experts never chosen
    // Share of a token's experts that the previous token also chose, and what independent
    // choices with the same per-expert popularity would give (sum_e p_e^2 / k).
    double reuse_previous = 0.0;
    double reuse_independent = 0.0;
    // Reuse distance: of the choices, the share whose expert was last chosen in this layer
    // 1, 2, 3-4, 5-8, 9-16, 17-64, >64 tokens earlier, or never before (last bucket).
    std::array<double, 8> distance_share{};
};

// Buckets of LayerRoutingStats::distance_share: their upper bounds in tokens (0 = never).
constexpr std::array<int, 8> kReuseDistanceBounds = {1, 2, 4, 8, 16, 64, 1 << 30, 0};

struct LayerPairStats {
    int32_t from = 0, to = 0;      // adjacent sparse layers
    double mutual_info_bits = 0.0; // I(expert chosen at `from`; expert chosen at `to`), same token
    double to_entropy_bits = 0.0;  // H(expert chosen at `to`), the most the MI could be
};

struct PredictionStats {
    int32_t ahead = 0;       // sparse layers between the guess and the layer guessed
    uint64_t guessed = 0;    // experts guessed
    uint64_t chosen = 0;     // experts the router chose where a guess was made
    uint64_t correct = 0;    // guessed and chosen
    double precision() const { return guessed ? double(correct) / double(guessed) : 0.0; }
    double recall() const { return chosen ? double(correct) / double(chosen) : 0.0; }
};

struct RoutingStats {
    std::vector<LayerRoutingStats> layers;
    std::vector<LayerPairStats> pairs;
    std::vector<PredictionStats> predictions;  // one per recorded distance ahead
};

RoutingStats routing_stats(const RouteTraceData &trace);  // predictions: every guess kept

// The guesses `ahead` sparse layers ahead that `rule` keeps, for tokens [first_token,
// end_token), scored against the router's choice; the previous token's choice (for the
// rule's reuse bar) is the trace's own.
PredictionStats prediction_stats(const RouteTraceData &trace, int32_t ahead, const PrefetchRule &rule,
                                 int64_t first_token = 0, int64_t end_token = INT64_MAX);

}  // namespace mst
