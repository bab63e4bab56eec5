// The L2 warm-up (docs/gpu_decode_kernels.md, "Weights pulled into L2 beside a latency-bound
// level"; MST_VULKAN_L2_WARM). A decode layer's latency-bound levels (the split attention,
// combine_id) leave an H100's memory system mostly idle, while the products after them (o,
// the next layer's q/k/v) run at about half its bandwidth. A small dispatch of
// shaders/l2_warm.comp recorded into such a level reads the weights the next product reads,
// so that they are in L2 (50 MB) when it runs. It reads only weights and writes only a fresh
// scratch slice nothing reads, and it is recorded only where CommandStream::joins_level says
// it needs no barrier: the levels and their barriers stay as they were, the commands gain
// the warm dispatches, and the results keep their bits.
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <string>

#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"
#include "core/log.h"

namespace mst {
namespace {

constexpr uint32_t kWarmThreads = 256;  // l2_warm.comp's local size

}  // namespace

const char *VulkanBackend::l2_warm_name(uint32_t which) {
    switch (which & (kWarmO | kWarmQkv)) {
        case kWarmO: return "o";
        case kWarmQkv: return "qkv";
        case kWarmO | kWarmQkv: return "o+qkv";
        default: return "off";
    }
}

void VulkanBackend::set_l2_warm(uint32_t which, uint32_t groups, uint64_t min_bytes) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    l2_warm_ = which & (kWarmO | kWarmQkv);
    l2_warm_groups_ = std::max<uint32_t>(1, groups);
    l2_warm_min_bytes_ = min_bytes;
    warm_after_layer_.clear();
    warm_layer_ = -1;
}

void VulkanBackend::configure_l2_warm_from_environment() {
    uint32_t which = 0, groups = 64;
    if (const char *env = std::getenv("MST_VULKAN_L2_WARM"); env && *env) {
        const std::string v = env;
        if (v == "1") which = kWarmO | kWarmQkv;
        else if (v == "o") which = kWarmO;
        else if (v == "qkv") which = kWarmQkv;
        else if (v != "0")
            fail(MST_ERR_INVALID_ARGUMENT,
                 "MST_VULKAN_L2_WARM='{}': expected 0 (off), 1 (o and q/k/v), o (the o product's weights during the "
                 "attention) or qkv (the next layer's q/k/v weights during the combine)",
                 v);
    }
    if (const char *env = std::getenv("MST_VULKAN_L2_WARM_GROUPS"); env && *env) {
        const std::string v = env;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), groups);
        if (ec != std::errc() || end != v.data() + v.size() || groups == 0 || groups > 65535)
            fail(MST_ERR_INVALID_ARGUMENT, "MST_VULKAN_L2_WARM_GROUPS='{}': expected the warm's workgroups, 1..65535", v);
    }
    set_l2_warm(which, groups);
    if (which)
        log(MST_LOG_INFO, "vulkan: L2 warm-up of {} on {} workgroups (MST_VULKAN_L2_WARM, MST_VULKAN_L2_WARM_GROUPS)",
            l2_warm_name(which), groups);
}

bool VulkanBackend::record_l2_warm(std::span<const BufferSlice> ranges) {
    BufferSlice r[3];
    uint32_t n[3] = {0, 0, 0}, used = 0;
    for (const BufferSlice &b : ranges) {
        // uvec4 loads: the binding 16-byte aligned (its last partial uvec4 is not read).
        if (used == 3 || b.size < l2_warm_min_bytes_ || b.size > kWarmMaxBytes || b.offset % 16 != 0) continue;
        r[used] = b;
        n[used++] = uint32_t(b.size / 16);
    }
    if (used == 0 || !stream_->joins_level({r, used})) return false;
    for (uint32_t i = used; i < 3; ++i) r[i] = r[0];  // bound, not read (n[i] = 0)
    const BufferSlice sink = stream_->device_scratch(16);
    // Ahead of the deferred ops, into the level open now: it commutes with them (they
    // write no weights, and the sink is its own).
    const DeferredHold hold(*this, true);
    stream_->dispatch(pipelines_->get("l2_warm", 4), {r[0], r[1], r[2], sink}, n, sizeof n, l2_warm_groups_);
    ++l2_warm_dispatches_;
    return true;
}

void VulkanBackend::warm_after_layer(int64_t layer) {
    if (!(l2_warm_ & kWarmQkv)) return;
    // A learned slice of a buffer destroyed since may name a buffer no longer there.
    if (warm_learned_destroyed_ != VulkanBuffer::destroyed()) warm_after_layer_.clear();
    if (const auto it = warm_after_layer_.find(layer); it != warm_after_layer_.end())
        record_l2_warm(it->second);
    warm_layer_ = layer;
    warm_layer_resets_ = stream_->scratch_resets();
}

void VulkanBackend::learn_after_layer(std::span<const DeviceWeight> qkv) {
    if (!(l2_warm_ & kWarmQkv) || warm_layer_ < 0) return;
    // Only within one wait: the last layer's experts are followed by the head and the wait
    // for the logits, not by the first layer's q/k/v (warming them there would be evicted).
    if (warm_layer_resets_ == stream_->scratch_resets() && qkv.size() <= 3) {
        if (warm_after_layer_.empty()) warm_learned_destroyed_ = VulkanBuffer::destroyed();
        if (warm_learned_destroyed_ == VulkanBuffer::destroyed()) {
            std::array<BufferSlice, 3> r{};
            for (size_t i = 0; i < qkv.size(); ++i) r[i] = qkv[i].data;
            warm_after_layer_[warm_layer_] = r;
        }
    }
    warm_layer_ = -1;
}

}  // namespace mst
