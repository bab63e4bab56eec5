// Replays a routing trace against an expert cache of a given size, without the model or
// the bytes: the hit rate an eviction policy would reach on that routing, next to the
// offline-optimal bound (Belady's MIN, which knows every future access).
//
// The trace is replayed in decode order (token by token, sparse layer by sparse layer),
// the way a streaming decode meets it; a token's experts in one layer are looked up first
// and the misses inserted after, as ExpertStore::fetch does, through the same
// EvictionPolicy objects the real ExpertCache uses.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "experts/eviction_policy.h"
#include "experts/expert_key.h"
#include "experts/prefetch_rule.h"
#include "router/route_trace_file.h"

namespace mst {

struct ReplayResult {
    uint64_t hits = 0;
    uint64_t misses = 0;
    // The misses by cause. first_use: the expert's first access in the trace (compulsory:
    // every cache pays it, Belady too); not_kept: it was not cached at its previous access
    // (admission refused it, or Belady bypassed it); evicted: it was cached and evicted since.
    uint64_t first_use = 0;
    uint64_t not_kept = 0;
    uint64_t evicted = 0;
    // Experts cached, and of those evicted before a single hit (one-shot experts that took room).
    uint64_t inserted = 0;
    uint64_t evicted_unused = 0;
    double hit_rate() const { return hits + misses ? double(hits) / double(hits + misses) : 0.0; }
};

// The accesses of a trace in decode order, grouped: group g is one token's experts of one
// sparse layer (each expert once, -1 slots dropped). Keys carry the model's layer index.
std::vector<std::vector<ExpertKey>> decode_accesses(const RouteTraceData &trace);

// The prefetcher's guesses one sparse layer ahead, in the same grouping: entry g holds what
// was guessed, at group g's layer, for the next sparse layer of the same token (the guesses
// `rule` keeps; empty where none was recorded).
std::vector<std::vector<ExpertKey>> decode_hints(const RouteTraceData &trace, const PrefetchRule &rule);

// The router's scores of each group's token and layer, in the same grouping: its top M
// (the trace's r lines) with k x weight / (sum of the M weights), what
// EvictionPolicy::on_router_score takes. Empty groups where the trace recorded none.
using RouterScores = std::vector<std::vector<std::pair<ExpertKey, float>>>;
RouterScores decode_router_scores(const RouteTraceData &trace);

// Per-layer budgets: `capacity` experts split evenly over the sparse layers (the first
// capacity % layers get one more), each layer with a cache of its own; otherwise one cache
// shared by all layers, like ExpertCache.
struct ReplayOptions {
    size_t capacity = 0;  // experts that fit
    bool per_layer = false;
    // Prefetch-informed eviction: after group g's lookups and before its misses are inserted,
    // the residents among hints[g] (decode_hints) are touched as if used, so the policy keeps
    // what the next layer is predicted to need.
    // The touches are not lookups: they count neither as hits nor as misses.
    const std::vector<std::vector<ExpertKey>> *hints = nullptr;
    // Per-layer budgets of given sizes (layer -> experts; e.g. reuse_sized_budgets), in place
    // of the even split; `capacity` and `per_layer` are then ignored.
    std::map<int32_t, size_t> layer_capacity;
    // Told to the policy before group g's lookups (EvictionPolicy::on_router_score), as the
    // router computes them before the layer fetches its experts.
    const RouterScores *scores = nullptr;
};

// The experts group g's layer needs at the next token (empty for the last token): the
// foresight of an oracle that knows one token ahead, to pass as ReplayOptions::hints. Not
// something a decode can know; it measures how much of Belady's edge one token of foresight
// would buy.
std::vector<std::vector<ExpertKey>> next_token_hints(const std::vector<std::vector<ExpertKey>> &groups, size_t n_slots);

// Per-layer budgets summing to `capacity`, sized by each layer's measured reuse: the split
// that maximises the total LRU hits of `groups` (each layer's hits at every size come from
// its stack distances, Mattson et al. 1970; the best split by dynamic programming, since a
// layer's curve is not concave: its own other experts of a token sit between two uses).
std::map<int32_t, size_t> reuse_sized_budgets(const std::vector<std::vector<ExpertKey>> &groups, size_t capacity);

// `policy` is a make_eviction_policy name or "none" (caches nothing: every access misses).
ReplayResult replay_policy(const std::vector<std::vector<ExpertKey>> &groups, const std::string &policy,
                           const ReplayOptions &options);
// The same with a policy made by `make` (one per cache), for variants that have no name.
using PolicyFactory = std::function<std::unique_ptr<EvictionPolicy>()>;
ReplayResult replay_policy(const std::vector<std::vector<ExpertKey>> &groups, const PolicyFactory &make,
                           const ReplayOptions &options);
// Belady's MIN with bypass: on a miss in a full cache it drops, among the residents and
// the incoming expert, the one used again furthest in the future (or never). No policy
// that keeps at most `capacity` experts can hit more often on this access sequence.
ReplayResult replay_belady(const std::vector<std::vector<ExpertKey>> &groups, const ReplayOptions &options);

}  // namespace mst
