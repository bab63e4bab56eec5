// A recorded routing trace: per token and sparse layer, the experts the router chose with
// their weights, and optionally what the prefetcher's predictor guessed for that layer 1..A
// sparse layers earlier. Cache policies, prefetch and routing statistics are measured by
// replaying it (experts/cache_replay.h, router/routing_stats.h) without running the model.
//
// File format (text, one record a line, fields separated by single spaces):
//   moestream-route-trace V          V = 1, or 2 when the trace has r lines
//   experts E k K predict A tokens T [ranked M]   (ranked: version 2 only)
//   layers L0 L1 ... Ln-1            the sparse layers' model indices, ascending
//   c t s e:w e:w ...                token t, sparse layer slot s (0..n-1): K chosen expert
//                                    ids (-1 = empty) and their router weights
//   p t s a e:w e:w ...              token t, slot s: the K experts guessed for it from the
//                                    hidden state a (1..A) sparse layers earlier, with the
//                                    router's weight for each (a bare e, as older traces
//                                    wrote, reads as weight 0: unknown)
//   r t s e:w e:w ...                token t, slot s: the router's top M (M > K) expert ids
//                                    with their weights when it picks M, the scores of the
//                                    experts just below the top-K included (version 2)
// Every (t, s) has exactly one c line; p and r lines are optional (absent: none recorded).
// A trace without r lines is written as version 1, so older readers still read it. Lines may
// come in any order; "#" starts a comment line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mst {

struct RouteTraceData {
    int32_t n_experts = 0;
    int32_t k = 0;
    int32_t predict_ahead = 0;   // A: guesses recorded up to this many sparse layers ahead
    int64_t n_tokens = 0;
    std::vector<int32_t> layers; // model index of each sparse layer slot

    std::vector<int32_t> ids;      // [token][slot][k], -1 = empty
    std::vector<float> weights;    // [token][slot][k]
    std::vector<int32_t> guesses;  // [a - 1][token][slot][k], -1 = no guess
    std::vector<float> guess_weights;  // [a - 1][token][slot][k], the router's weight of each guess
    int32_t ranked = 0;                // M: the router's top M recorded per token and slot (0: none)
    std::vector<int32_t> ranked_ids;   // [token][slot][M], -1 = not recorded
    std::vector<float> ranked_weights; // [token][slot][M], the router's weights when it picks M

    size_t n_slots() const { return layers.size(); }
    size_t at(int64_t token, size_t slot) const { return (size_t(token) * n_slots() + slot) * size_t(k); }
    size_t guess_at(int32_t ahead, int64_t token, size_t slot) const {
        return size_t(ahead - 1) * size_t(n_tokens) * n_slots() * size_t(k) + at(token, slot);
    }

    size_t ranked_at(int64_t token, size_t slot) const {
        return (size_t(token) * n_slots() + slot) * size_t(ranked);
    }

    // An empty trace of this shape: every id and guess -1, every weight 0.
    static RouteTraceData sized(int32_t n_experts, int32_t k, int32_t predict_ahead, int64_t n_tokens,
                                std::vector<int32_t> layers, int32_t ranked = 0);
};

// Throws MST_ERR_IO when the file cannot be written.
void write_route_trace(const std::string &path, const RouteTraceData &trace);
// Throws MST_ERR_IO when unreadable, MST_ERR_BAD_FORMAT naming the line for anything malformed
// (an expert id out of range, a missing or repeated c line, a bad header).
RouteTraceData read_route_trace(const std::string &path);

}  // namespace mst
