// The router's softmax top-k as a backend op (issue 17, docs/device_graph.md). A device
// backend that implements DeviceRouting writes the chosen ids and weights as results of
// its batch, so the router logits never have to come back to the host: the ids and
// weights are what the host reads (k values instead of E logits), and they can feed later
// device work. Optional: a backend without it (the CPU backend) runs the host routine.
// Kept apart from Backend's table so that backends that do not route need not know it.
#pragma once

#include <cstdint>

#include "backends/backend.h"

namespace mst {

class DeviceRouting {
public:
    virtual ~DeviceRouting() = default;
    // route_softmax_topk's contract (router/softmax_topk.h) as an op of the current
    // batch: logits [n_tokens][n_experts] (a pending result or host memory), ids
    // [n_tokens][k] and weights [n_tokens][k] written like any op's result.
    virtual void softmax_topk(const float *logits, int64_t n_tokens, int32_t n_experts, int32_t k, bool renormalize,
                              int32_t *ids, float *weights) = 0;
};

// The backend's routing ops, or nullptr when it has none (the caller then syncs and runs
// the host routine: the CPU backend's way, at its speed). A capability query, not an
// assumption (DESIGN.md, conventions 5).
DeviceRouting *device_routing(Backend &backend);

// Throws MST_ERR_INVALID_ARGUMENT unless 1 <= k <= n_experts, sizes are non-negative and
// the pointers are set when there is work (every implementation checks this first).
void check_softmax_topk_params(const float *logits, int64_t n_tokens, int32_t n_experts, int32_t k,
                               const int32_t *ids, const float *weights);

}  // namespace mst
