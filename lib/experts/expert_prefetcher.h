// Reads predicted experts ahead of need, while the current layer computes. The model
// predicts (by applying the next layer's router to the current hidden state); the store
// takes staged experts when the real routing asks for them and settles each prediction
// against the real choice, which gives precision, recall and the bytes read for nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "experts/expert_key.h"
#include "experts/prefetch_rule.h"
#include "experts/expert_weights.h"

namespace mst {

struct PrefetchStats {
    uint64_t predicted = 0;     // experts predicted
    uint64_t used = 0;          // predicted and then chosen
    uint64_t needed = 0;        // chosen in steps that had a prediction
    uint64_t wasted_bytes = 0;  // read ahead and not chosen
};

class ExpertPrefetcher {
public:
    // Starts reading the given experts of a layer (at prefetch priority); one future each.
    using SubmitFn = std::function<std::vector<std::shared_future<ExpertHandle>>(int32_t layer,
                                                                                 std::vector<int32_t> experts)>;
    using SizeFn = std::function<uint64_t(const ExpertKey &key)>;

    ExpertPrefetcher(SubmitFn submit, SizeFn size_of, PrefetchRule rule = default_prefetch_rule());

    // The predictor guessed `experts` of `layer` with the router's `weights` (alike; empty:
    // unknown, all equally sure); those the rule keeps (against the experts this layer chose
    // last time) count as predicted, and those not `resident` are read ahead.
    void predict(int32_t layer, std::span<const int32_t> experts, std::span<const float> weights,
                 const std::function<bool(const ExpertKey &)> &resident);
    // The read of a staged expert, finished or in flight; nullopt if none is staged.
    // The caller owns it from here (its wait, and reading again if it failed).
    std::optional<std::shared_future<ExpertHandle>> take(const ExpertKey &key);
    // The real choice for `layer`: score the prediction and drop what was not used.
    void settle(int32_t layer, std::span<const int32_t> chosen);
    PrefetchStats stats() const;

private:
    SubmitFn submit_;
    SizeFn size_of_;
    PrefetchRule rule_;
    mutable std::mutex mutex_;
    // The experts each layer chose last (the previous token's, when decoding): the rule's
    // lower bar for a guess the previous token also chose.
    std::unordered_map<int32_t, std::vector<int32_t>> last_chosen_;
    std::unordered_map<ExpertKey, std::shared_future<ExpertHandle>, ExpertKeyHash> staged_;
    std::unordered_map<int32_t, std::unordered_set<int32_t>> predictions_;  // layer -> predicted experts
    PrefetchStats stats_;
};

}  // namespace mst
