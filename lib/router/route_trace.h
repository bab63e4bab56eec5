// An observer of the routers' choices, for measuring routing itself (expert-usage entropy
// of a trained model, traces for cache studies) without changing what a forward computes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace mst {

// Called once per sparse layer and forward call with the router's top-k ids [n_tokens][k]
// (-1: an empty slot), as the router chose them: before the budget rules drop any, and
// not for the prefetcher's guesses at later layers.
using RouteTrace = std::function<void(size_t layer, int64_t n_tokens, int32_t k, const int32_t *ids)>;

}  // namespace mst
