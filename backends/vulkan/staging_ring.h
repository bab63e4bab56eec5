// The staging ring: host-visible memory through which bytes the host holds (streamed
// experts, stable weights on first use, new KV positions) reach device-local buffers on a
// discrete GPU. A reservation is valid until the command stream next waits for the
// device; when the ring is full the stream submits what it has, waits and starts over.
#pragma once

#include "backends/vulkan/vulkan_buffers.h"

namespace mst {

class StagingRing {
public:
    StagingRing(const VulkanContext &ctx, VkDeviceSize bytes) : buffer_(ctx, bytes, MemoryKind::Host) {}
    // `bytes` of the ring, or a slice with size 0 when they do not fit in what is left.
    BufferSlice reserve(VkDeviceSize bytes);
    void reset() { head_ = 0; }
    VkDeviceSize capacity() const { return buffer_.size(); }

private:
    VulkanBuffer buffer_;
    VkDeviceSize head_ = 0;
};

}  // namespace mst
