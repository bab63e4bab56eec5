// Vulkan buffers and their memory. Three kinds: device-local (weights, the expert cache,
// KV mirrors), host-visible "io" memory the host writes inputs into and reads outputs
// from (cached system memory on discrete GPUs; on unified-memory devices the same
// device-local memory as everything else), and the arena: a bump sub-allocator over large
// device-local blocks for the resident weights, which live as long as the backend.
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>
#include <vector>

#include "backends/vulkan/vulkan_context.h"

namespace mst {

enum class MemoryKind {
    Device,  // device-local; host-visible too on unified-memory devices
    Host,    // host-visible and coherent, host-cached when possible
};

// One VkBuffer with memory of its own, persistently mapped when host-visible.
class VulkanBuffer {
public:
    VulkanBuffer() = default;
    VulkanBuffer(const VulkanContext &ctx, VkDeviceSize size, MemoryKind kind);
    ~VulkanBuffer();
    VulkanBuffer(VulkanBuffer &&o) noexcept;
    VulkanBuffer &operator=(VulkanBuffer &&o) noexcept;
    VulkanBuffer(const VulkanBuffer &) = delete;
    VulkanBuffer &operator=(const VulkanBuffer &) = delete;

    VkBuffer buffer() const { return buffer_; }
    VkDeviceSize size() const { return size_; }
    uint8_t *mapped() const { return mapped_; }  // nullptr when not host-visible
    // Buffers destroyed so far, all backends together: a recorded command buffer that a
    // replay would submit again is valid only while none of the buffers it names is gone
    // (CommandStream's replay; a new buffer may get a destroyed one's handle).
    static uint64_t destroyed();

private:
    void release();
    VkDevice device_ = VK_NULL_HANDLE;
    VkBuffer buffer_ = VK_NULL_HANDLE;
    VkDeviceMemory memory_ = VK_NULL_HANDLE;
    VkDeviceSize size_ = 0;
    uint8_t *mapped_ = nullptr;
};

// A range of a buffer as a shader binds it.
struct BufferSlice {
    VkBuffer buffer = VK_NULL_HANDLE;
    VkDeviceSize offset = 0;
    VkDeviceSize size = 0;
    uint8_t *mapped = nullptr;  // host address of offset 0 of the slice, when host-visible
};

inline BufferSlice whole(const VulkanBuffer &b) { return BufferSlice{b.buffer(), 0, b.size(), b.mapped()}; }

// Bump allocation from blocks of `block_bytes` (a larger request gets a block of its own).
// Nothing is freed before the arena: its users (resident weights) live as long as it.
class BufferArena {
public:
    BufferArena(const VulkanContext &ctx, MemoryKind kind, VkDeviceSize block_bytes);
    BufferSlice allocate(VkDeviceSize size);
    // Forget every allocation, keeping the blocks (for per-submission scratch).
    void reset();
    VkDeviceSize allocated_bytes() const { return allocated_; }

private:
    const VulkanContext &ctx_;
    MemoryKind kind_;
    VkDeviceSize block_bytes_, alignment_;
    std::vector<VulkanBuffer> blocks_;
    size_t current_ = 0;
    VkDeviceSize used_ = 0;  // in blocks_[current_]
    VkDeviceSize allocated_ = 0;
};

}  // namespace mst
