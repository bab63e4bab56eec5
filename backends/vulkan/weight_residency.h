// Device copies of weights. Stable views (resident tensors) are copied once, on first
// use, into an arena and kept by (data, size) for the backend's life. Streamed expert
// parts (WeightView::expert_key) are kept in the GPU expert cache: its own byte budget,
// least recently used evicted first, never an expert the current submission uses. Views
// with neither are copied into host-visible scratch at every use. On unified-memory
// devices the arena and cache are host-visible device memory filled by memcpy, with no
// staging copy.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <tuple>
#include <unordered_map>

#include "backends/backend.h"
#include "backends/vulkan/command_stream.h"
#include "backends/vulkan/expert_slots.h"

namespace mst {

struct DeviceWeight {
    BufferSlice data;
    BufferSlice scales;  // MXFP4 only
};

// Named apart from experts/expert_cache.h's ExpertCacheStats (the host cache's): one name
// for two types would break the one-definition rule in a program that includes both.
struct GpuExpertCacheStats {
    uint64_t hits = 0, misses = 0, evictions = 0, bytes_uploaded = 0;
    uint64_t bytes_used = 0, budget = 0;
    // Guessed expert parts copied ahead (prefetch): then found by a lookup, evicted unused,
    // not copied for want of room, and their bytes (in bytes_uploaded too).
    uint64_t prefetched = 0, prefetch_used = 0, prefetch_wasted = 0, prefetch_skipped = 0, prefetch_bytes = 0;
};

class WeightResidency {
public:
    WeightResidency(const VulkanContext &ctx, uint64_t expert_budget);

    // The device copy of w's bytes (and its MXFP4 scales), uploading through `stream`
    // when needed. `as_f32`: float weights widened to float32 first (vectors the
    // elementwise kernels read).
    DeviceWeight get(CommandStream &stream, const WeightView &w, bool as_f32 = false);

    // Stack every provided expert of `set` with its slot table (ExpertSlots), counted
    // against the expert budget; the layer's copies in the expert cache not used by the
    // current submission are evicted first (they would be on the device twice). False,
    // with nothing changed, when the budget cannot hold the layer.
    bool make_resident(CommandStream &stream, const SwigluExpertSet &set);
    const ExpertSlots &slots() const { return slots_; }
    // A guessed expert part (expert_key set) copied into the expert cache ahead of need,
    // uploading through `stream`. True when its copy was recorded; false when it is on the
    // device already, or when room for it would evict a part the current submission uses
    // (the guess never displaces what recorded work reads) or one of the guessed layer's
    // own parts (a wrong guess would cost the layer a hit); counted as skipped.
    bool prefetch(CommandStream &stream, const WeightView &w);

    // Call after each submission: experts used by it may be evicted again.
    void end_submission() { ++epoch_; }

    const GpuExpertCacheStats &expert_stats() const { return stats_; }
    uint64_t resident_bytes() const { return arena_.allocated_bytes(); }

    // Bytes of w's data and of its scales.
    static uint64_t data_bytes(const WeightView &w);
    static uint64_t scale_bytes(const WeightView &w);

private:
    // Expert parts of one size live in slots of large buffers, so that a miss costs no
    // allocation (vkAllocateMemory takes a millisecond on some drivers) and an eviction
    // frees none: the slot goes back to its pool.
    struct Slot {
        BufferSlice slice;
        uint32_t block = 0, index = 0;
        // The last submission that used the part the slot held before it was given back
        // (0: none): recorded work of the current submission may still read it then.
        uint64_t used_epoch = 0;
    };
    struct SlotPool {
        uint64_t slot_bytes = 0;
        uint32_t slots_per_block = 1;
        std::vector<VulkanBuffer> blocks;
        std::vector<Slot> free;
    };
    Slot take_slot(uint64_t bytes);
    void give_back(uint64_t bytes, const Slot &slot) { pools_[bytes].free.push_back(slot); }

    struct CachedExpert {
        Slot slot;
        uint64_t bytes = 0;
        uint64_t epoch = 0;  // last submission that used it
        bool guessed = false;  // copied ahead by prefetch and not looked up since
        std::list<uint64_t>::iterator lru;
    };
    DeviceWeight expert(CommandStream &stream, const WeightView &w);
    // Evict least recently used parts not used by the current submission (nor of layer
    // keep_layer, -1: none) until `total` more bytes fit; false when they cannot.
    bool make_room(uint64_t total, int64_t keep_layer = -1);
    // A new cache entry for w of `total` bytes (room made), its copy recorded.
    DeviceWeight insert(CommandStream &stream, const WeightView &w, uint64_t total);
    std::map<uint64_t, SlotPool> pools_;

    const VulkanContext &ctx_;
    BufferArena arena_;
    std::map<std::tuple<const void *, uint64_t, bool>, DeviceWeight> stable_;
    std::unordered_map<uint64_t, CachedExpert> experts_;
    std::list<uint64_t> lru_;  // front = most recent
    GpuExpertCacheStats stats_;
    uint64_t epoch_ = 1;
    ExpertSlots slots_;
    // Bytes of each layer's experts in the cache (make_resident's quick test), and the
    // bookkeeping of dropping one entry.
    std::unordered_map<int64_t, uint64_t> layer_bytes_;
    static int64_t layer_of(uint64_t expert_key) { return int64_t(expert_key >> 40) - 1; }
    void forget(std::unordered_map<uint64_t, CachedExpert>::iterator it);
};

}  // namespace mst
