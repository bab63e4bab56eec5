// An observer of the routers' choices, for measuring routing itself (expert-usage entropy
// of a trained model, traces for cache and prefetch studies) without changing what a
// forward computes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace mst {

struct RouteTrace {
    // Called once per sparse layer and forward call with the router's top-k ids and
    // weights [n_tokens][k] (-1: an empty slot), as the router chose them: before the
    // budget rules drop any, and not for the prefetcher's guesses at later layers.
    std::function<void(size_t layer, int64_t n_tokens, int32_t k, const int32_t *ids, const float *weights)> chosen;

    // The prefetcher's guesses, for every token of the batch (the prefetcher itself
    // guesses only when decoding one token): the routers of the next `predict_layers`
    // sparse layers applied to the hidden state that enters sparse layer `source`'s
    // router. `target` is the layer whose experts were guessed, ids and the router's weights
    // for them [n_tokens][k] (what a confidence rule selects by, experts/prefetch_rule.h).
    int32_t predict_layers = 0;
    std::function<void(size_t source, size_t target, int64_t n_tokens, int32_t k, const int32_t *ids,
                       const float *weights)>
        predicted;

    // The router's top `ranked_k` (> k) of every token at each sparse layer, with the weights
    // it gives when it picks that many: the scores of the experts just below the top-k, which
    // the chosen ones alone do not tell (a cache may rank experts by them). One extra router
    // pass per layer, so only when set.
    int32_t ranked_k = 0;
    std::function<void(size_t layer, int64_t n_tokens, int32_t m, const int32_t *ids, const float *weights)> ranked;

    explicit operator bool() const {
        return bool(chosen) || (predicted && predict_layers > 0) || (ranked && ranked_k > 0);
    }
};

}  // namespace mst
