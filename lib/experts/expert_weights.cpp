#include "experts/expert_weights.h"

namespace mst {

void ExpertMemoryCounter::add(uint64_t bytes) {
    const uint64_t now = live_bytes.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    uint64_t peak = peak_bytes.load(std::memory_order_relaxed);
    while (now > peak && !peak_bytes.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
}

ExpertWeights::ExpertWeights(uint64_t bytes, std::shared_ptr<ExpertMemoryCounter> memory_counter)
    : buffer(bytes, "expert weights"), owned_bytes(buffer.size()), counter(std::move(memory_counter)), nbytes(bytes) {
    if (counter) counter->add(owned_bytes);
}

ExpertWeights::ExpertWeights(std::shared_ptr<HostExpertSlab> from, uint8_t *slot_in, uint64_t bytes,
                             std::shared_ptr<ExpertMemoryCounter> memory_counter)
    : slab(std::move(from)), slot(slot_in), owned_bytes(bytes), counter(std::move(memory_counter)), nbytes(bytes) {
    if (counter) counter->add(owned_bytes);
}

std::shared_ptr<ExpertWeights> make_read_weights(uint64_t bytes, const std::shared_ptr<ExpertMemoryCounter> &counter,
                                                 const std::shared_ptr<HostExpertSlab> &slab) {
    if (uint8_t *slot = slab ? slab->take(bytes) : nullptr)
        return std::make_shared<ExpertWeights>(slab, slot, bytes, counter);
    return std::make_shared<ExpertWeights>(bytes, counter);
}

ExpertWeights::ExpertWeights(Mapped, uint64_t mapped_bytes, std::function<void()> release)
    : nbytes(mapped_bytes), on_release(std::move(release)) {}

ExpertWeights::~ExpertWeights() {
    if (counter) counter->remove(owned_bytes);
    if (slab) slab->give_back(slot);
    if (on_release) on_release();
}

}  // namespace mst
