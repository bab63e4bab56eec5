// Feed-forward pieces shared by the architectures: the SwiGLU MLP (dense layers, shared
// experts) and the routed-expert step that streams experts through the expert store.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "backends/backend.h"
#include "experts/expert_store.h"
#include "router/budget_policy.h"
#include "router/route_trace.h"

namespace mst {

struct SwigluWeights {
    WeightView gate, up, down;  // gate, up: [I][H]; down: [H][I]
};

// out[t] = down(silu(gate h[t]) * up h[t]) for n_tokens rows of h [n][H]; out [n][H].
void swiglu_mlp(Backend &backend, const SwigluWeights &w, const float *h, int64_t n_tokens, float *out);

// Routing decisions of a batch: ids and weights are [n_tokens][k]; an id of -1 is an
// empty slot (the budget rules, applied before, may have emptied it).
struct Routing {
    int64_t n_tokens = 0;
    int32_t k = 0;
    const int32_t *ids = nullptr;
    const float *weights = nullptr;
};

// One expert's computation: y [m][H] = expert(x [m][H]) for m tokens.
using ExpertFn = std::function<void(Backend &backend, const ExpertWeights &expert, const float *x, int64_t m, float *y)>;

// The SwiGLU expert (parts in swiglu_part order).
void swiglu_expert(Backend &backend, const ExpertWeights &expert, const float *x, int64_t m, float *y);

// out[t] += sum_j weights[t][j] * expert_{ids[t][j]}(h[t]); an empty expert_fn means the
// SwiGLU expert, run a fetched group at a time through Backend::routed_swiglu. Experts are processed in
// ascending id (the reference's summation order), fetched in groups of at most
// max(k, cache budget / expert size) so a prefill that touches every expert of a layer
// never holds much more than the cache budget. One token (decode) is computed expert by
// expert as reads land, with the same sums in the same order (bitwise equal).
void routed_experts(Backend &backend, ExpertStore &store, int32_t layer, const float *h, int64_t hidden,
                    const Routing &routing, float *out, ExpertIoStats &io, const ExpertFn &expert_fn = {});

// How an architecture routes: which of its layers are sparse, and a layer's routing of n
// rows of hidden state into ids and weights [n][k] (its router product, bias and top-k rule).
struct LayerRouting {
    size_t n_layers = 0;
    std::function<bool(size_t layer)> is_sparse;
    std::function<void(size_t layer, const float *h, int64_t n, int32_t k, int32_t *ids, float *weights)> route;
    // The same routing recorded as device ops whose ids and weights the host does not read
    // (DeviceRouting); false, with nothing recorded, where the architecture or backend
    // cannot (a router bias, another rule, no device routing). Empty: never.
    std::function<bool(size_t layer, const float *h, int64_t n, int32_t k, int32_t *ids, float *weights)>
        route_on_device;
    // One token routed by `layer` and, for the guess the prefetcher copies ahead, by the next
    // sparse layer `next` on the same hidden state, the host reading both at one wait (the
    // guess's own wait sat between the layer's router and its experts: docs/device_graph.md
    // "Expert copies on a transfer queue"). False, with nothing recorded, where the two
    // cannot share the wait (no device routing, a router bias); empty: never.
    std::function<bool(size_t layer, size_t next, const float *h, int32_t k, int32_t *ids, float *weights,
                       int32_t *next_ids, float *next_weights)>
        route_with_next;
    bool renormalized = false;  // route renormalises the kept weights (the budget rules need to know)
    RouteTrace trace;           // told each layer's routing of the batch (ForwardOptions::route_trace)
};

// The budget rules of a run of consecutive rows (one sequence of a batched step): the
// next n_rows rows after those of the runs before it. A null policy or stats: none.
struct RowsBudget {
    int64_t n_rows = 0;
    const BudgetPolicy *policy = nullptr;
    BudgetStats *stats = nullptr;
};

// The sparse feed-forward of `layer` for n rows of h [n][hidden]: routes them, applies
// each run of rows' budget rules (`budgets` cover the n rows in order) and runs every
// chosen expert once over all the rows routed to it, so that rows of several sequences
// share each expert's read. When decoding one token with the store's prefetch on, it
// also applies the next sparse layers' routers (as many as store.prefetch_layers()) to
// this same h and starts reading the experts they pick, so that those reads overlap this
// layer's expert compute (the residual stream changes little between layers, which makes
// the guess good). out [n][hidden] is overwritten with the weighted sum of routed experts.
// On a backend that chooses experts on the device (DeviceExperts), the experts fetched are
// offered to it, and a decode step of a layer whose experts are all on the device, with
// no feature that needs the host's view of its routing (traces, prefetch, budget rules,
// expert_fn), is routed and computed there without a wait (docs/device_graph.md).
// `residual` (optional, [n][hidden]): the stream the caller adds out into next. Where that
// decode step's backend adds the experts' sum into it itself (DeviceExperts::
// routed_swiglu_by_id_add, bitwise residual + out), it does so, out is left unwritten and
// the result is true; false: out holds the sum, for the caller to add.
bool sparse_feed_forward(Backend &backend, ExpertStore &store, const LayerRouting &routing, size_t layer,
                         const float *h, int64_t n, int64_t hidden, int32_t k, std::span<const RowsBudget> budgets,
                         float *out, ExpertIoStats &io, const ExpertFn &expert_fn = {}, float *residual = nullptr);
// The same with one budget for all n rows.
void sparse_feed_forward(Backend &backend, ExpertStore &store, const LayerRouting &routing, size_t layer,
                         const float *h, int64_t n, int64_t hidden, int32_t k, const BudgetPolicy *budget,
                         BudgetStats *budget_stats, float *out, ExpertIoStats &io,
                         const ExpertFn &expert_fn = {});

}  // namespace mst
