// The architecture interface. One implementation per architecture (lib/model/<arch>.cpp),
// built from the shared layer pieces; the registry picks it by config model_type.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "experts/expert_store.h"
#include "router/budget_policy.h"
#include "router/route_trace.h"

namespace mst {

// Per-session state that outlives one forward call (KV cache, recurrent state).
class ModelState {
public:
    virtual ~ModelState() = default;
    virtual uint64_t bytes() const = 0;
    // The float arrays holding what the first n_past positions left behind, in a fixed
    // order and independent of n_ctx: what a saved session stores (session/session_state.h).
    virtual std::vector<std::span<float>> contents(int32_t n_past) = 0;
    // Called after a restore overwrote contents(n_past): the state now holds n_past positions.
    virtual void restored(int32_t n_past) = 0;
    // Whether a forward call may start before the position the state reached (a KV cache
    // overwrites the positions; a recurrent state has absorbed them and cannot be rewound).
    virtual bool rewindable() const = 0;
};

struct ForwardOptions {
    int32_t experts_per_token = 0;  // the routed top-k to use (1..n_experts)
    bool all_logits = false;        // logits of every token, else only of the last
    BudgetPolicy budget;            // further expert-budget rules (off by default)
    BudgetStats *budget_stats = nullptr;  // where the policy's skips are counted
    RouteTrace route_trace;         // sees every sparse layer's routing (empty: none)
};

// Parameter and byte counts, for `moestream info` and mst_model_info.
struct ModelSizes {
    uint64_t n_params_total = 0;
    uint64_t n_params_dense = 0;     // everything but routed experts
    uint64_t n_params_per_expert = 0;
    int32_t n_moe_layers = 0;
    uint64_t resident_bytes = 0;     // non-expert weights in memory
    uint64_t expert_bytes_total = 0; // routed expert weights on disk
    uint64_t expert_bytes_each = 0;  // one expert (largest, if they differ)
    // KV cache bytes per context token over all layers, as this model keeps it, and as
    // full per-head float32 keys and values would take (larger only for models that
    // cache a compressed form, like MLA's latents).
    uint64_t kv_cache_bytes_per_token = 0;
    uint64_t kv_cache_full_bytes_per_token = 0;
    uint64_t recurrent_state_bytes = 0;  // per session, whatever the context (linear attention)
};

// One sequence's share of a batched step (Model::forward_batch): its own state and
// position, its tokens, its budget rules and where its logits go.
struct SequenceStep {
    ModelState *state = nullptr;
    int32_t n_past = 0;
    std::span<const int32_t> tokens;
    bool all_logits = false;              // logits of every token, else only of the last
    BudgetPolicy budget;
    BudgetStats *budget_stats = nullptr;  // where its budget rules count (null: none applied)
    float *logits = nullptr;              // [n][vocab] with all_logits, else [1][vocab]
};

class Model {
public:
    virtual ~Model() = default;
    virtual std::unique_ptr<ModelState> create_state(int32_t n_ctx) const = 0;
    // Run `tokens` at positions n_past, n_past + 1, ... and write logits: [n][vocab] with
    // options.all_logits, else [1][vocab] for the last token.
    virtual void forward(ModelState &state, int32_t n_past, std::span<const int32_t> tokens,
                         const ForwardOptions &options, float *logits, ExpertIoStats &io) = 0;
    // Several sequences (distinct states) in one step, each getting the logits forward
    // would give it alone, within float reassociation: an architecture that batches runs
    // the dense products once over all rows, attention per sequence over its own state,
    // and each routed expert once over every row routed to it, so that one read of an
    // expert serves every sequence that chose it. experts_per_token is shared by the batch.
    // The default (an architecture that does not batch) runs forward on each in turn.
    virtual void forward_batch(std::span<const SequenceStep> steps, int32_t experts_per_token, ExpertIoStats &io);
    // Whether forward_batch computes the sequences together (else in turn).
    virtual bool batches_sequences() const { return false; }
    virtual ModelSizes sizes() const = 0;
    virtual const ExpertStore &experts() const = 0;
};

}  // namespace mst
