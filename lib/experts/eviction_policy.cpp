#include <fmt/ranges.h>

#include "core/error.h"
#include "experts/eviction_policies.h"

namespace mst {

std::vector<std::string> cache_policy_names() { return {"none", "lru", "lfu", "arc", "lrfu", "lrfu-admit", "lru-2touch", "lrfu-2touch", "learned"}; }

std::unique_ptr<EvictionPolicy> make_eviction_policy(const std::string &name) {
    if (name == "lru") return make_lru_policy();
    if (name == "lfu") return make_lfu_policy();
    if (name == "arc") return make_arc_policy();
    // Half-life 16 x the capacity: the best of 0.25..64 on the trained model's routing at
    // every cache size from 5 to 50 % of the experts (bench/RESULTS.md).
    if (name == "lrfu") return make_lrfu_policy(16.0, false);
    if (name == "lrfu-admit") return make_lrfu_policy(16.0, true);
    if (name == "lru-2touch") return make_second_touch_policy(make_lru_policy(), name);
    if (name == "lrfu-2touch") return make_second_touch_policy(make_lrfu_policy(16.0, false), name);
    if (name == "learned") return make_learned_policy(shipped_reuse_model(), kShippedFollowsWindow);
    fail(MST_ERR_INVALID_ARGUMENT, "unknown expert cache policy '{}'; known: {}", name,
         fmt::join(cache_policy_names(), ", "));
}

}  // namespace mst
