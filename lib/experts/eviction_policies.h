// The policy implementations behind make_eviction_policy (one file each).
#pragma once

#include <memory>

#include "experts/eviction_policy.h"

namespace mst {

std::unique_ptr<EvictionPolicy> make_lru_policy();
std::unique_ptr<EvictionPolicy> make_lfu_policy();
std::unique_ptr<EvictionPolicy> make_arc_policy();
// Scores halve every `half_life_per_capacity` x capacity accesses; with `admission`, a
// missed expert is cached only when its score is above the victim's.
std::unique_ptr<EvictionPolicy> make_lrfu_policy(double half_life_per_capacity, bool admission);

}  // namespace mst
