// A device backend's expert cache seen from the library (issue 17 item 2, docs/device_graph.md
// "Guessed experts copied ahead into the GPU cache"): its statistics, which join the host
// expert cache's and the storage tiers' in one set (mst_cache_stats), and the copy of a
// coming layer's guessed experts into it behind the work already recorded, so that the
// layer finds them there instead of copying them after its router's wait. Optional, like
// DeviceExperts: a backend without a device expert cache (the CPU) has none of it.
#pragma once

#include <cstdint>
#include <span>

#include "backends/backend.h"

namespace mst {

struct DeviceExpertCacheStats {
    uint64_t hits = 0, misses = 0, evictions = 0;
    uint64_t bytes_uploaded = 0;   // host to device (PCIe on a discrete GPU), prefetches included
    uint64_t direct_bytes = 0;     // of all uploads: copied by the device from imported host memory
    uint64_t staged_bytes = 0;     // of all uploads: through a staging buffer (a host memcpy first)
    uint64_t prefetched = 0;       // expert parts copied ahead on a guess
    uint64_t prefetch_used = 0;    // of those, found by a later lookup (a hit they made)
    uint64_t prefetch_wasted = 0;  // of those, evicted before any lookup found them
    uint64_t prefetch_skipped = 0; // guesses not copied: no room without evicting what recorded work uses
    uint64_t prefetch_bytes = 0;   // bytes copied ahead (in bytes_uploaded too)
};

class DeviceExpertCache {
public:
    virtual ~DeviceExpertCache() = default;
    virtual DeviceExpertCacheStats device_expert_cache_stats() const = 0;
    // Whether prefetch_experts copies anything (a backend may be told not to, to compare).
    virtual bool expert_prefetch_enabled() const = 0;
    // Copy these expert parts (views with expert_key set, in host memory the caller keeps
    // alive until the call returns) into the device expert cache behind the work recorded
    // so far, unless they are there already. A guess never evicts a part that work recorded
    // since the last wait uses (the current layer's experts): it is skipped instead.
    // Returns the parts whose copy was recorded.
    virtual size_t prefetch_experts(std::span<const WeightView> parts) = 0;
};

// The backend's device expert cache, or nullptr when it has none (a capability query,
// DESIGN.md conventions 5).
DeviceExpertCache *device_expert_cache(Backend &backend);

}  // namespace mst
