// The policy implementations behind make_eviction_policy (one file each).
#pragma once

#include <memory>
#include <string>

#include "experts/eviction_policy.h"
#include "experts/reuse_model.h"

namespace mst {

std::unique_ptr<EvictionPolicy> make_lru_policy();
std::unique_ptr<EvictionPolicy> make_lfu_policy();
std::unique_ptr<EvictionPolicy> make_arc_policy();
// Scores halve every `half_life_per_capacity` x capacity accesses; with `admission`, a
// missed expert is cached only when its score is above the victim's.
// `soft_weight` > 0: every router score (EvictionPolicy::on_router_score) also adds
// soft_weight x score to the expert's (a token's scores add up to k, as its hard picks do).
std::unique_ptr<EvictionPolicy> make_lrfu_policy(double half_life_per_capacity, bool admission,
                                                 double soft_weight = 0.0);
// `base` behind second-touch admission: a missed expert is cached only when it was missed
// before within the last capacity misses.
std::unique_ptr<EvictionPolicy> make_second_touch_policy(std::unique_ptr<EvictionPolicy> base, std::string name);
// Evicts the resident `model` scores lowest, its features' follows counted online within
// `follows_window` tokens, or (0) read from `fitted` if any; admits a miss only when it
// scores above the victim. "learned" is the shipped model with kShippedFollowsWindow.
std::unique_ptr<EvictionPolicy> make_learned_policy(ReuseModel model, int32_t follows_window,
                                                    std::shared_ptr<const ReuseFollows> fitted = nullptr);

}  // namespace mst
