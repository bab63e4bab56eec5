#include "experts/host_expert_slab.h"

#include <algorithm>

#include "core/error.h"

namespace mst {

HostExpertSlab::HostExpertSlab(uint64_t slot_bytes, uint64_t n_slots, uint64_t slab_bytes,
                               std::function<uint64_t()> reads_epoch)
    : reads_epoch_(std::move(reads_epoch)) {
    if (slot_bytes == 0 || n_slots == 0)
        fail(MST_ERR_INVALID_ARGUMENT, "host expert slab: {} slots of {} bytes", n_slots, slot_bytes);
    constexpr uint64_t a = AlignedBuffer::kAlignment;
    slot_bytes_ = (slot_bytes + a - 1) / a * a;
    const uint64_t per_slab = std::max<uint64_t>(1, slab_bytes / slot_bytes_);
    for (uint64_t left = n_slots; left > 0;) {
        const uint64_t n = std::min(left, per_slab);
        slabs_.emplace_back(size_t(n * slot_bytes_), "host expert slab");
        for (uint64_t i = 0; i < n; ++i) free_.push_back(slabs_.back().data() + i * slot_bytes_);
        left -= n;
    }
    // Handed out from the back: the first slots first, so a small working set stays in few pages.
    std::reverse(free_.begin(), free_.end());
    stats_.slots = n_slots;
    stats_.slot_bytes = slot_bytes_;
}

HostExpertSlab::~HostExpertSlab() {
    if (!release_) return;
    for (AlignedBuffer &b : slabs_) {
        try {
            release_(b.data());
        } catch (...) {
            // A destructor cannot report it; the backend drops its imports at its own end.
        }
    }
}

std::vector<HostExpertSlab::Region> HostExpertSlab::regions() {
    std::vector<Region> r;
    for (AlignedBuffer &b : slabs_) r.push_back(Region{b.data(), b.size()});
    return r;
}

void HostExpertSlab::reclaim() {
    if (waiting_.empty()) return;
    const uint64_t now = reads_epoch_ ? reads_epoch_() : ~uint64_t(0);
    size_t done = 0;
    while (done < waiting_.size() && waiting_[done].epoch < now) free_.push_back(waiting_[done++].slot);
    waiting_.erase(waiting_.begin(), waiting_.begin() + std::ptrdiff_t(done));
}

uint8_t *HostExpertSlab::take(uint64_t bytes) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (bytes > slot_bytes_) {
        ++stats_.full;
        return nullptr;
    }
    if (free_.empty()) reclaim();
    if (free_.empty()) {
        ++stats_.full;
        return nullptr;
    }
    uint8_t *slot = free_.back();
    free_.pop_back();
    ++stats_.taken;
    return slot;
}

void HostExpertSlab::give_back(uint8_t *slot) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (!reads_epoch_) {
        free_.push_back(slot);
        return;
    }
    waiting_.push_back(Waiting{slot, reads_epoch_()});
}

HostExpertSlabStats HostExpertSlab::stats() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    HostExpertSlabStats s = stats_;
    s.waiting = waiting_.size();
    return s;
}

}  // namespace mst
