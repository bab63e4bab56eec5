// The policy implementations behind make_eviction_policy (one file each).
#pragma once

#include <memory>
#include <string>

#include "experts/eviction_policy.h"

namespace mst {

std::unique_ptr<EvictionPolicy> make_lru_policy();
std::unique_ptr<EvictionPolicy> make_lfu_policy();
std::unique_ptr<EvictionPolicy> make_arc_policy();
// Scores halve every `half_life_per_capacity` x capacity accesses; with `admission`, a
// missed expert is cached only when its score is above the victim's.
std::unique_ptr<EvictionPolicy> make_lrfu_policy(double half_life_per_capacity, bool admission);
// `base` behind second-touch admission: a missed expert is cached only when it was missed
// before within the last capacity misses.
std::unique_ptr<EvictionPolicy> make_second_touch_policy(std::unique_ptr<EvictionPolicy> base, std::string name);

}  // namespace mst
