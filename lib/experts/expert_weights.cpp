#include "experts/expert_weights.h"

namespace mst {

void ExpertMemoryCounter::add(uint64_t bytes) {
    const uint64_t now = live_bytes.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    uint64_t peak = peak_bytes.load(std::memory_order_relaxed);
    while (now > peak && !peak_bytes.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
}

ExpertWeights::ExpertWeights(uint64_t bytes, std::shared_ptr<ExpertMemoryCounter> memory_counter)
    : buffer(bytes, "expert weights"), counter(std::move(memory_counter)), nbytes(bytes) {
    if (counter) counter->add(buffer.size());
}

ExpertWeights::ExpertWeights(Mapped, uint64_t mapped_bytes, std::function<void()> release)
    : nbytes(mapped_bytes), on_release(std::move(release)) {}

ExpertWeights::~ExpertWeights() {
    if (counter) counter->remove(buffer.size());
    if (on_release) on_release();
}

}  // namespace mst
