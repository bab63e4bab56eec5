// The host expert cache's memory as a few large slabs of equal slots, so that a device
// backend can import it once (backends/host_memory_import.h) and copy a missed expert
// straight from it, instead of each expert having a buffer of its own that would need an
// import (a driver allocation) per read. An expert read from storage takes a free slot;
// when its last user lets go the slot is set aside until the device has finished every
// copy recorded before then (the backend's device_reads_epoch), and only then reused, so
// a pending copy never reads the next expert's bytes. No free slot: the expert takes a
// buffer of its own, as before (its uploads take the staging ring).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "core/aligned_buffer.h"

namespace mst {

struct HostExpertSlabStats {
    uint64_t slots = 0, slot_bytes = 0;
    uint64_t taken = 0;         // experts placed in a slot
    uint64_t full = 0;          // experts that found no free slot (a buffer of their own)
    uint64_t waiting = 0;       // slots set aside now until the device is done with them
};

class HostExpertSlab {
public:
    // n_slots slots of slot_bytes (rounded up to AlignedBuffer::kAlignment), in slabs of
    // at most slab_bytes each (at least one slot). `reads_epoch`: the device's count of
    // finished waits (HostMemoryImport::device_reads_epoch); empty: slots are reused at
    // once (no device reads them). Throws MST_ERR_INVALID_ARGUMENT for zero sizes.
    HostExpertSlab(uint64_t slot_bytes, uint64_t n_slots, uint64_t slab_bytes,
                   std::function<uint64_t()> reads_epoch);
    // Runs the release set below for every slab before its memory is freed.
    ~HostExpertSlab();
    HostExpertSlab(const HostExpertSlab &) = delete;
    HostExpertSlab &operator=(const HostExpertSlab &) = delete;

    uint64_t slot_bytes() const { return slot_bytes_; }
    // The slabs, for the backend to import: (start, bytes) each.
    struct Region {
        uint8_t *data;
        uint64_t bytes;
    };
    std::vector<Region> regions();
    // Called with each slab's start before the slab is freed (the backend forgets its
    // import: imported memory must outlive the import).
    void set_release(std::function<void(const void *)> release) { release_ = std::move(release); }
    // A free slot for `bytes` (<= slot_bytes), or nullptr when none is free.
    uint8_t *take(uint64_t bytes);
    // The slot's user let go: reusable once the device is done with it.
    void give_back(uint8_t *slot);
    HostExpertSlabStats stats() const;

private:
    // Moves set-aside slots the device is done with to the free list; mutex_ held.
    void reclaim();
    uint64_t slot_bytes_;
    std::function<uint64_t()> reads_epoch_;
    std::function<void(const void *)> release_;
    std::vector<AlignedBuffer> slabs_;
    mutable std::mutex mutex_;
    std::vector<uint8_t *> free_;
    struct Waiting {
        uint8_t *slot;
        uint64_t epoch;  // the device's count when the slot was given back
    };
    std::vector<Waiting> waiting_;  // in the order given back (epochs ascending)
    HostExpertSlabStats stats_;
};

}  // namespace mst
