// The expert cache budget when the caller leaves it to the library. A fixed default is
// wrong both ways: 1 GiB is less than one token's experts of Qwen3-30B-A3B (48 MoE layers
// x 8 experts, 1.13 GB at 4 bits), so such a cache never hits and all the work falls to
// the page cache, while on a large machine it leaves most of the memory unused.
#pragma once

#include <cstdint>
#include <string>

namespace mst {

struct CacheBudgetInputs {
    uint64_t headroom = 0;           // memory the process may still take before its weights
                                     // were loaded (memory_headroom()); 0 = unknown
    uint64_t resident_bytes = 0;     // the non-expert weights held in memory
    uint64_t one_token_bytes = 0;    // the experts one token reads (top-k x MoE layers x one expert)
    uint64_t expert_bytes_total = 0; // every routed expert
};

struct CacheBudget {
    uint64_t bytes = 0;
    std::string why;  // how it was reached, for the log
};

// What stays free for everything else: KV caches, activations, the allocator's slack and
// the page cache's own share of the expert reads: an eighth of the headroom, at least 256 MiB.
uint64_t cache_budget_margin(uint64_t headroom);

// headroom - resident weights - margin, never below one token's experts (a smaller cache
// would evict every expert before it could be used again) and never above all the experts.
// With the headroom unknown, 1 GiB under the same bounds.
CacheBudget default_cache_budget(const CacheBudgetInputs &in);

}  // namespace mst
