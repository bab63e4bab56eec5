// One expert's weights in memory, as read from storage or mapped in place. Shared (via
// shared_ptr) between the cache and the layer step that uses it, so an expert evicted
// while in use stays valid until that step lets go of it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "backends/backend.h"
#include "core/aligned_buffer.h"
#include "experts/host_expert_slab.h"

namespace mst {

// Bytes of expert weights alive in memory (cached or in use), for memory statistics.
struct ExpertMemoryCounter {
    std::atomic<uint64_t> live_bytes{0};
    std::atomic<uint64_t> peak_bytes{0};
    void add(uint64_t bytes);
    void remove(uint64_t bytes) { live_bytes.fetch_sub(bytes, std::memory_order_relaxed); }
};

struct ExpertWeights {
    // Weights read into a buffer of their own (`bytes` may include alignment slack).
    ExpertWeights(uint64_t bytes, std::shared_ptr<ExpertMemoryCounter> counter);
    // Weights used in place in a storage tier's mapping: nothing is allocated and nothing
    // counted as allocated; `on_release` runs when the last user lets go (the cache
    // evicted the expert and no layer step holds it), so the tier can drop its pages.
    struct Mapped {};
    ExpertWeights(Mapped, uint64_t mapped_bytes, std::function<void()> on_release);
    // Weights read into a slot of the host expert slab (host_expert_slab.h), which a device
    // backend may have imported; the slot goes back to the slab when the last user lets go.
    // Counted as allocated, like a buffer of their own.
    ExpertWeights(std::shared_ptr<HostExpertSlab> slab, uint8_t *slot, uint64_t bytes,
                  std::shared_ptr<ExpertMemoryCounter> counter);
    ~ExpertWeights();
    ExpertWeights(const ExpertWeights &) = delete;
    ExpertWeights &operator=(const ExpertWeights &) = delete;

    // Where the weights are read to: the slab slot, else buffer (null for mapped weights).
    uint8_t *data() { return slot ? slot : buffer.data(); }
    AlignedBuffer buffer;           // empty for mapped weights and slab slots
    std::shared_ptr<HostExpertSlab> slab;
    uint8_t *slot = nullptr;        // in slab, when the weights are there
    uint64_t owned_bytes = 0;       // allocated for these weights (buffer or slot), counted in counter
    std::vector<WeightView> parts;  // views into buffer or the mapping, in ExpertLayout::parts order
    std::shared_ptr<ExpertMemoryCounter> counter;
    // The memory this expert occupies, whether its own buffer or mapped file pages: what
    // the expert cache charges against its budget.
    uint64_t nbytes = 0;
    std::function<void()> on_release;
};

using ExpertHandle = std::shared_ptr<const ExpertWeights>;

// Weights of `bytes` read from storage: in a free slot of `slab` (may be null) when there
// is one, else in a buffer of their own.
std::shared_ptr<ExpertWeights> make_read_weights(uint64_t bytes, const std::shared_ptr<ExpertMemoryCounter> &counter,
                                                 const std::shared_ptr<HostExpertSlab> &slab);

}  // namespace mst
