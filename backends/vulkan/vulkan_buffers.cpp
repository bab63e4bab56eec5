#include "backends/vulkan/vulkan_buffers.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "backends/vulkan/object_counts.h"
#include "core/error.h"

namespace mst {

VulkanBuffer::VulkanBuffer(const VulkanContext &ctx, VkDeviceSize size, MemoryKind kind) : device_(ctx.device()) {
    size_ = std::max<VkDeviceSize>((size + 15) / 16 * 16, 16);
    VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.size = size_;
    bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    ctx.set_sharing(bci);
    vk_check(vkCreateBuffer(device_, &bci, nullptr, &buffer_), "vkCreateBuffer");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(device_, buffer_, &req);

    const bool host = kind == MemoryKind::Host || ctx.unified_memory();
    int32_t type = -1;
    if (kind == MemoryKind::Device && ctx.unified_memory())
        type = ctx.find_memory_type(req.memoryTypeBits,
                                    VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                        VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                                    VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    if (type < 0 && host)
        type = ctx.find_memory_type(req.memoryTypeBits,
                                    VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                                    VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    if (type < 0 && !host)
        type = ctx.find_memory_type(req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    if (type < 0) {
        release();
        fail(MST_ERR_BACKEND, "vulkan: no {} memory type for a buffer of {} bytes", host ? "host-visible" : "device-local",
             size);
    }
    VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    mai.allocationSize = req.size;
    mai.memoryTypeIndex = uint32_t(type);
    const VkResult r = vkAllocateMemory(device_, &mai, nullptr, &memory_);
    if (r != VK_SUCCESS) {
        release();
        fail(r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY ? MST_ERR_OUT_OF_MEMORY : MST_ERR_BACKEND,
             "vulkan: vkAllocateMemory of {} bytes ({}) failed: {}", req.size, host ? "host-visible" : "device-local",
             vk_result_name(r));
    }
    vulkan_object_created(VulkanObject::memory);
    vk_check(vkBindBufferMemory(device_, buffer_, memory_, 0), "vkBindBufferMemory");
    if (host) {
        void *p = nullptr;
        vk_check(vkMapMemory(device_, memory_, 0, VK_WHOLE_SIZE, 0, &p), "vkMapMemory");
        mapped_ = static_cast<uint8_t *>(p);
    }
}

namespace {
std::atomic<uint64_t> g_destroyed{0};
}  // namespace

uint64_t VulkanBuffer::destroyed() { return g_destroyed.load(std::memory_order_relaxed); }

void VulkanBuffer::release() {
    if (!device_) return;
    if (buffer_) {
        vkDestroyBuffer(device_, buffer_, nullptr);
        g_destroyed.fetch_add(1, std::memory_order_relaxed);
    }
    if (memory_) {
        vkFreeMemory(device_, memory_, nullptr);  // unmaps too
        vulkan_object_destroyed(VulkanObject::memory);
    }
    buffer_ = VK_NULL_HANDLE;
    memory_ = VK_NULL_HANDLE;
    mapped_ = nullptr;
}

VulkanBuffer::~VulkanBuffer() { release(); }

VulkanBuffer::VulkanBuffer(VulkanBuffer &&o) noexcept { *this = std::move(o); }

VulkanBuffer &VulkanBuffer::operator=(VulkanBuffer &&o) noexcept {
    if (this != &o) {
        release();
        device_ = std::exchange(o.device_, VK_NULL_HANDLE);
        buffer_ = std::exchange(o.buffer_, VK_NULL_HANDLE);
        memory_ = std::exchange(o.memory_, VK_NULL_HANDLE);
        size_ = std::exchange(o.size_, 0);
        mapped_ = std::exchange(o.mapped_, nullptr);
    }
    return *this;
}

BufferArena::BufferArena(const VulkanContext &ctx, MemoryKind kind, VkDeviceSize block_bytes)
    : ctx_(ctx), kind_(kind), block_bytes_(block_bytes),
      alignment_(std::max<VkDeviceSize>(256, ctx.properties().limits.minStorageBufferOffsetAlignment)) {}

BufferSlice BufferArena::allocate(VkDeviceSize size) {
    size = std::max<VkDeviceSize>(size, 4);
    const VkDeviceSize padded = (size + alignment_ - 1) / alignment_ * alignment_;
    // Find a block with room: the current one, or the next kept one that is large enough.
    while (current_ < blocks_.size() && used_ + padded > blocks_[current_].size()) {
        ++current_;
        used_ = 0;
    }
    if (current_ == blocks_.size()) {
        blocks_.emplace_back(ctx_, std::max(block_bytes_, padded), kind_);
        used_ = 0;
    }
    VulkanBuffer &b = blocks_[current_];
    BufferSlice s{b.buffer(), used_, size, b.mapped() ? b.mapped() + used_ : nullptr};
    used_ += padded;
    allocated_ += padded;
    return s;
}

void BufferArena::reset() {
    current_ = 0;
    used_ = 0;
    allocated_ = 0;
}

}  // namespace mst
