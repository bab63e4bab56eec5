// Guessed experts copied into the GPU expert cache ahead of need (DeviceExpertCache,
// docs/device_graph.md "Guessed experts copied ahead into the GPU cache"), and the cache's
// statistics as the library reads them. The copies are recorded behind the current
// layer's products on the compute queue and kicked, so they run while the host records
// the next layer; WeightResidency::prefetch keeps them from evicting the current layer's
// experts.
#include "backends/vulkan/env_switch.h"
#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"
#include "core/log.h"

namespace mst {

void VulkanBackend::configure_expert_prefetch_from_environment() {
    expert_prefetch_ = env_switch("MST_VULKAN_EXPERT_PREFETCH", expert_prefetch_,
                                  "guessed experts copied into the GPU cache ahead",
                                  "each layer copies its own misses after its router's wait");
    if (!expert_prefetch_)
        log(MST_LOG_INFO, "vulkan: no GPU expert prefetch (MST_VULKAN_EXPERT_PREFETCH=0)");
}

void VulkanBackend::set_expert_prefetch(bool on) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    expert_prefetch_ = on;
}

DeviceExpertCacheStats VulkanBackend::device_expert_cache_stats() const {
    const GpuExpertCacheStats &g = residency_->expert_stats();
    DeviceExpertCacheStats s;
    s.hits = g.hits;
    s.misses = g.misses;
    s.evictions = g.evictions;
    s.bytes_uploaded = g.bytes_uploaded;
    s.direct_bytes = stream_->direct_bytes();
    s.staged_bytes = stream_->staged_bytes();
    s.prefetched = g.prefetched;
    s.prefetch_used = g.prefetch_used;
    s.prefetch_wasted = g.prefetch_wasted;
    s.prefetch_skipped = g.prefetch_skipped;
    s.prefetch_bytes = g.prefetch_bytes;
    return s;
}

size_t VulkanBackend::prefetch_experts(std::span<const WeightView> parts) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    if (!expert_prefetch_) return 0;
    size_t copied = 0;
    for (const WeightView &w : parts) copied += residency_->prefetch(*stream_, w) ? 1 : 0;
    // Outside a batch nothing would run them until the next op: submit as any op does.
    // Inside one, start them behind the work recorded so far, without a wait.
    if (copied > 0) {
        if (stream_->in_batch()) stream_->kick();
        else submit();
    }
    return copied;
}

}  // namespace mst
