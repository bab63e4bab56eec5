// The transfer lane of a CommandStream (docs/device_graph.md, "Expert copies on a transfer
// queue"): copies into the GPU expert cache (a streamed layer's misses, the next layer's
// guesses) are recorded into command buffers of their own and submitted to the context's
// transfer queue as soon as something needs them, each batch signalling the next value of
// one timeline semaphore. The compute submission that reads a copied range waits for that
// batch's value on the device; the host waits for the last value at each of its waits (the
// staging ring and imported host slots are reused after a wait, and copies from them must
// have run by then). On a device with one queue the batches go to that queue as separate
// submissions with the same semaphore, so the same code runs everywhere.
#pragma once

#include <vulkan/vulkan.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "backends/vulkan/vulkan_context.h"

namespace mst {

class TransferLane {
public:
    // Off (on() false, nothing created) when the context has no transfer queue.
    explicit TransferLane(const VulkanContext &ctx);
    ~TransferLane();
    TransferLane(const TransferLane &) = delete;
    TransferLane &operator=(const TransferLane &) = delete;

    bool on() const { return semaphore_ != VK_NULL_HANDLE; }
    VkSemaphore semaphore() const { return semaphore_; }

    // Record copies from src into dst into the open batch (submitted by submit(), or by
    // value_for() when a compute command reads what they write).
    void copy(VkBuffer src, VkBuffer dst, const std::vector<VkBufferCopy> &regions);
    // The semaphore value a device command that reads or writes [begin, end) of `buffer`
    // must wait for, 0 when no copy since the last host wait writes there. A range of the
    // open batch submits it first (a wait for an unsubmitted signal would never end).
    uint64_t value_for(VkBuffer buffer, VkDeviceSize begin, VkDeviceSize end);
    bool has_pending() const { return !pending_.empty(); }
    // Submit the open batch, if any, signalling the next value.
    void submit();
    // The host waits until every submitted batch has run (`known_done`: a value the caller
    // already knows reached, e.g. one a finished compute submission waited for), then
    // forgets the copied ranges and reuses the command buffers. Adds its blocked time to
    // `wait_seconds`; spins for up to 5 ms first when `spin` (a GPU).
    void wait_all(uint64_t known_done, bool spin, double &wait_seconds);

    // Counters: batches submitted, copy commands and bytes, the last value signalled.
    uint64_t submissions() const { return submissions_; }
    uint64_t commands() const { return commands_; }
    uint64_t bytes() const { return bytes_; }
    uint64_t last_value() const { return value_; }
    // Host seconds from the end of a host wait (wait_all) to the first batch submitted after
    // it, summed, and how many waits were followed by one: on a streamed layer, from the
    // host's wait for the router's result returning (the ids' delivery into host memory and
    // the lookups follow) to its first missed expert's copy being submitted.
    double first_copy_delay_seconds() const { return first_copy_delay_seconds_; }
    uint64_t first_copies() const { return first_copies_; }

private:
    struct Write {
        VkBuffer buffer;
        VkDeviceSize begin, end;
        uint64_t value;  // of its batch; value_ + 1 while the batch is open
    };
    const VulkanContext &ctx_;
    VkCommandPool pool_ = VK_NULL_HANDLE;
    VkSemaphore semaphore_ = VK_NULL_HANDLE;
    VkCommandBuffer open_ = VK_NULL_HANDLE;  // the batch being recorded
    std::vector<VkCommandBuffer> in_flight_, spare_;
    std::vector<Write> pending_;  // written since the last host wait
    uint64_t value_ = 0;          // signalled by the last batch submitted
    uint64_t submissions_ = 0, commands_ = 0, bytes_ = 0;
    std::chrono::steady_clock::time_point waited_at_{};
    bool since_wait_ = false;  // no batch submitted since the last host wait
    double first_copy_delay_seconds_ = 0;
    uint64_t first_copies_ = 0;
};

}  // namespace mst
