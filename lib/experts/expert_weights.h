// One expert's weights in memory, as read from storage. Shared (via shared_ptr) between
// the cache and the layer step that uses it, so an expert evicted while in use stays
// valid until that step lets go of it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "backends/backend.h"
#include "core/aligned_buffer.h"

namespace mst {

// Bytes of expert weights alive in memory (cached or in use), for memory statistics.
struct ExpertMemoryCounter {
    std::atomic<uint64_t> live_bytes{0};
    std::atomic<uint64_t> peak_bytes{0};
    void add(uint64_t bytes);
    void remove(uint64_t bytes) { live_bytes.fetch_sub(bytes, std::memory_order_relaxed); }
};

struct ExpertWeights {
    ExpertWeights(uint64_t bytes, std::shared_ptr<ExpertMemoryCounter> counter);
    ~ExpertWeights();
    ExpertWeights(const ExpertWeights &) = delete;
    ExpertWeights &operator=(const ExpertWeights &) = delete;

    // The expert's logical size (the sum of its parts): what it costs the cache budget.
    uint64_t bytes() const { return logical_bytes; }

    uint64_t logical_bytes = 0;
    AlignedBuffer buffer;
    std::vector<WeightView> parts;  // views into buffer, in ExpertLayout::parts order
    std::shared_ptr<ExpertMemoryCounter> counter;
};

using ExpertHandle = std::shared_ptr<const ExpertWeights>;

}  // namespace mst
