// The host expert cache's memory imported by the device backend (issue 17 item 2,
// docs/device_graph.md "The library's host expert cache, imported"): when the backend can
// import host memory (backends/host_memory_import.h), the store's experts are read into
// the slots of a slab (experts/host_expert_slab.h) that the backend imported once, so a
// streamed expert's upload is a copy the device makes from it, with no host memcpy.
#pragma once

#include <cstdint>
#include <string>

#include "backends/backend.h"
#include "experts/expert_store.h"

namespace mst {

// Slab sizing: slots for the store's cache budget and some experts in flight beyond it
// (in use after eviction, read ahead, set aside until the device is done with them).
// MST_HOST_EXPERT_SLAB_MB=<n> caps the slab at n MiB; 0 turns it off (every expert a
// buffer of its own, as before). Throws MST_ERR_INVALID_ARGUMENT naming a bad value.
uint64_t host_expert_slab_slots(uint64_t cache_budget, uint64_t slot_bytes);

// Give `store` a slab the backend imports, before the store is first used. Returns what
// was done for the log: the slab's size, or why there is none (no import in the backend,
// the device declined, the switch); the store then keeps a buffer per expert.
std::string import_host_expert_slab(ExpertStore &store, Backend &backend);

}  // namespace mst
