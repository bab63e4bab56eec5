#include "backends/vulkan/staging_ring.h"

namespace mst {

BufferSlice StagingRing::reserve(VkDeviceSize bytes) {
    // 16-byte steps: vkCmdCopyBuffer needs no alignment, but memcpy into aligned
    // destinations is faster.
    const VkDeviceSize padded = (bytes + 15) / 16 * 16;
    if (head_ + padded > buffer_.size()) return BufferSlice{};
    BufferSlice s{buffer_.buffer(), head_, bytes, buffer_.mapped() + head_};
    head_ += padded;
    return s;
}

}  // namespace mst
