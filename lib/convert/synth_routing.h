// `moestream synth --routing-from TRACE`: router rows scaled so that the synthesized model
// uses its experts with a trained model's per-layer popularity. On random weights a row of
// larger norm wins the top-k more often, but by how much depends on the hidden states the
// random layers make (they share a common direction that grows with depth), so the scales
// are found on the model itself: a draft is written, run over calibration text, and each
// row scaled by how far its expert's share is from the trace's, a few rounds. Token-to-
// token reuse follows from how consecutive hidden states agree; with `recency` (--routing-
// reuse) the same rounds also move the recency heads' gain (convert/synth_recency.h) per
// layer toward the trace's next-token reuse (bench/RESULTS.md says how far each lands).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "router/route_trace_file.h"

namespace mst {

// Per sparse layer of the synthesized model (in model-layer order), one scale per expert
// for its router row (mean 1), or, for routers that select by score + a correction bias
// (DeepSeek-V3's e_score_correction_bias), that bias per expert with the rows unscaled.
struct RouterRowScales {
    std::vector<int32_t> layers;             // model index of each sparse layer
    std::vector<std::vector<float>> scales;  // [sparse layer][expert]
    std::vector<std::vector<float>> biases;  // [sparse layer][expert]; empty: no bias calibrated
    // [sparse layer]: the recency heads' o_proj gain (convert/synth_recency.h); empty: the
    // architecture has none and reuse between tokens is not shaped.
    std::vector<float> recency_gains;
    const std::vector<float> *for_layer(int32_t layer) const;
    const std::vector<float> *bias_for_layer(int32_t layer) const;
    std::optional<float> recency_gain_for_layer(int32_t layer) const;
};

// Each slot's expert shares (choices of the expert / all choices; they sum to 1).
std::vector<std::vector<double>> expert_shares(const RouteTraceData &trace);

// The trace's popularity for each of `sparse_layers` (model indices) of a model with
// `n_experts` experts: the trace's sparse layers are spread over the model's (layer i of n
// takes trace slot i * slots / n); another expert count takes the trace's popularity curve
// (shares sorted, resampled), so expert 0 is the most used.
std::vector<std::vector<double>> target_shares(const RouteTraceData &trace, size_t sparse_layers, int32_t n_experts);

// Writes a draft model with the given scales and returns its path.
using WriteDraftFn = std::function<std::string(const RouterRowScales &)>;

// Scales for `sparse_layers` that make the drafts' routing over calibration text (its
// first 1024 tokens; empty: letters drawn from `seed` with English frequencies) match the
// trace's per-layer popularity. With `by_bias` (the router selects by sigmoid score plus a
// correction bias) the bias is calibrated instead of the row norms: a row's norm moves its
// expert along the hidden states' common direction as much as it spreads it, so scaling
// rows could not flatten DeepSeek-V3's routing, while an additive bias shifts selection
// alone, as the model's own auxiliary-loss-free balancing does. With `recency`,
// recency_gains is filled too, one per sparse layer, calibrated jointly (recency changes
// popularity and popularity reuse, so both move every round) against the trace's next-token
// reuse over as many of its first tokens as the drafts run. Throws
// MST_ERR_INVALID_ARGUMENT when the trace has no tokens or layers, or the text fewer than
// 64 tokens.
RouterRowScales calibrate_router_rows(const RouteTraceData &trace, const std::vector<int32_t> &sparse_layers,
                                      int32_t n_experts, uint64_t seed, const std::string &text,
                                      const WriteDraftFn &write_draft, bool by_bias = false, bool recency = false);

}  // namespace mst
