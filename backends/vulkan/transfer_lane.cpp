#include "backends/vulkan/transfer_lane.h"

#include <algorithm>

namespace mst {

TransferLane::TransferLane(const VulkanContext &ctx) : ctx_(ctx) {
    if (ctx_.transfer_queue() == VK_NULL_HANDLE) return;
    VkCommandPoolCreateInfo cpci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    cpci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    cpci.queueFamilyIndex = ctx_.transfer_family();
    vk_check(vkCreateCommandPool(ctx_.device(), &cpci, nullptr, &pool_), "vkCreateCommandPool (transfer)");
    VkSemaphoreTypeCreateInfoKHR type{VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO_KHR};
    type.semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE_KHR;
    type.initialValue = 0;
    VkSemaphoreCreateInfo sci{VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO};
    sci.pNext = &type;
    const VkResult r = vkCreateSemaphore(ctx_.device(), &sci, nullptr, &semaphore_);
    if (r != VK_SUCCESS) {
        vkDestroyCommandPool(ctx_.device(), pool_, nullptr);
        pool_ = VK_NULL_HANDLE;
        semaphore_ = VK_NULL_HANDLE;
        vk_check(r, "vkCreateSemaphore (timeline)");
    }
}

TransferLane::~TransferLane() {
    // The owner (CommandStream) has waited for the device to be idle.
    if (semaphore_) vkDestroySemaphore(ctx_.device(), semaphore_, nullptr);
    if (pool_) vkDestroyCommandPool(ctx_.device(), pool_, nullptr);
}

void TransferLane::copy(VkBuffer src, VkBuffer dst, const std::vector<VkBufferCopy> &regions) {
    if (regions.empty()) return;
    if (open_ == VK_NULL_HANDLE) {
        if (spare_.empty()) {
            VkCommandBufferAllocateInfo cbai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
            cbai.commandPool = pool_;
            cbai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
            cbai.commandBufferCount = 1;
            vk_check(vkAllocateCommandBuffers(ctx_.device(), &cbai, &open_), "vkAllocateCommandBuffers (transfer)");
        } else {
            open_ = spare_.back();
            spare_.pop_back();
        }
        VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
        bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
        vk_check(vkBeginCommandBuffer(open_, &bi), "vkBeginCommandBuffer (transfer)");
    }
    // No barrier inside a batch or between batches: every copy writes a cache slot of its
    // own that nothing else writes before the next host wait (WeightResidency evicts only
    // parts of submissions that have finished), and reads host memory or the staging ring.
    vkCmdCopyBuffer(open_, src, dst, uint32_t(regions.size()), regions.data());
    ++commands_;
    for (const VkBufferCopy &r : regions) {
        pending_.push_back(Write{dst, r.dstOffset, r.dstOffset + r.size, value_ + 1});
        bytes_ += r.size;
    }
}

uint64_t TransferLane::value_for(VkBuffer buffer, VkDeviceSize begin, VkDeviceSize end) {
    uint64_t v = 0;
    for (const Write &w : pending_)
        if (w.buffer == buffer && w.begin < end && begin < w.end) v = std::max(v, w.value);
    if (v > value_) submit();
    return v;
}

void TransferLane::submit() {
    if (open_ == VK_NULL_HANDLE) return;
    vk_check(vkEndCommandBuffer(open_), "vkEndCommandBuffer (transfer)");
    const uint64_t signal = value_ + 1;
    VkTimelineSemaphoreSubmitInfoKHR ts{VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO_KHR};
    ts.signalSemaphoreValueCount = 1;
    ts.pSignalSemaphoreValues = &signal;
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.pNext = &ts;
    si.commandBufferCount = 1;
    si.pCommandBuffers = &open_;
    si.signalSemaphoreCount = 1;
    si.pSignalSemaphores = &semaphore_;
    vk_check(vkQueueSubmit(ctx_.transfer_queue(), 1, &si, VK_NULL_HANDLE), "vkQueueSubmit (transfer)");
    in_flight_.push_back(open_);
    open_ = VK_NULL_HANDLE;
    value_ = signal;
    ++submissions_;
    if (since_wait_) {
        first_copy_delay_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - waited_at_).count();
        ++first_copies_;
        since_wait_ = false;
    }
}

void TransferLane::wait_all(uint64_t known_done, bool spin, double &wait_seconds) {
    if (!on()) return;
    submit();
    if (value_ > known_done) {
        const auto t0 = std::chrono::steady_clock::now();
        uint64_t reached = 0;
        if (spin) {
            const auto until = t0 + std::chrono::milliseconds(5);
            while (ctx_.semaphore_counter_value()(ctx_.device(), semaphore_, &reached) == VK_SUCCESS &&
                   reached < value_ && std::chrono::steady_clock::now() < until) {
            }
        }
        if (reached < value_) {
            VkSemaphoreWaitInfoKHR wi{VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO_KHR};
            wi.semaphoreCount = 1;
            wi.pSemaphores = &semaphore_;
            wi.pValues = &value_;
            vk_check(ctx_.wait_semaphores()(ctx_.device(), &wi, UINT64_MAX), "vkWaitSemaphoresKHR");
        }
        wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    for (VkCommandBuffer cb : in_flight_) {
        vk_check(vkResetCommandBuffer(cb, 0), "vkResetCommandBuffer (transfer)");
        spare_.push_back(cb);
    }
    in_flight_.clear();
    pending_.clear();
    waited_at_ = std::chrono::steady_clock::now();
    since_wait_ = true;
}

}  // namespace mst
