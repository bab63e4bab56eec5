// The chosen physical device of the process's shared Vulkan instance (vulkan_instance.h),
// a VkDevice of this backend's own and its compute queue: what every other part of the
// Vulkan backend builds on. Devices are ranked discrete GPU, integrated GPU,
// virtual GPU, then CPU implementations (lavapipe); MST_VULKAN_DEVICE or
// BackendOptions::device picks one by index or by part of its name instead.
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mst {

// Throws MST_ERR_BACKEND naming the call and the VkResult when r is not VK_SUCCESS.
void vk_check(VkResult r, const char *call);
const char *vk_result_name(VkResult r);

struct VulkanDeviceInfo {
    uint32_t index = 0;  // in vkEnumeratePhysicalDevices order
    std::string name;
    VkPhysicalDeviceType type = VK_PHYSICAL_DEVICE_TYPE_OTHER;
    uint64_t device_local_bytes = 0;  // the largest device-local heap
    bool usable = false;              // Vulkan 1.1 and a compute queue
    std::string why_not;              // when not usable
};

const char *vk_device_type_name(VkPhysicalDeviceType t);

class VulkanContext {
public:
    // Opens the device `selector` names ("" = MST_VULKAN_DEVICE, else the best). With
    // gpu_only, CPU implementations are not chosen by ranking. Throws MST_ERR_BACKEND
    // naming why no device is usable.
    VulkanContext(const std::string &selector, bool gpu_only);
    ~VulkanContext();
    VulkanContext(const VulkanContext &) = delete;
    VulkanContext &operator=(const VulkanContext &) = delete;

    VkDevice device() const { return device_; }
    VkPhysicalDevice physical() const { return physical_; }
    VkQueue queue() const { return queue_; }
    uint32_t queue_family() const { return queue_family_; }
    const VulkanDeviceInfo &info() const { return info_; }
    const VkPhysicalDeviceProperties &properties() const { return props_; }
    const VkPhysicalDeviceMemoryProperties &memory_properties() const { return mem_props_; }

    // Subgroup arithmetic (subgroupAdd, subgroupMax) in compute shaders, and its width.
    bool subgroup_arithmetic() const { return subgroup_arithmetic_; }
    uint32_t subgroup_size() const { return subgroup_size_; }
    // The device shares memory with the host (integrated GPUs, CPU implementations):
    // device-local memory is host-visible and buffers the host writes are used as they are.
    bool unified_memory() const { return unified_memory_; }
    // vkCmdPushDescriptorSetKHR when the device has VK_KHR_push_descriptor (binding
    // buffers per dispatch without allocating descriptor sets), else nullptr.
    PFN_vkCmdPushDescriptorSetKHR push_descriptor() const { return push_descriptor_; }
    // The cooperative-matrix GEMM can run (cooperative_matrix.h), else why not.
    bool cooperative_matrix() const { return cooperative_matrix_; }
    const std::string &cooperative_matrix_why_not() const { return cooperative_matrix_why_not_; }
    // VK_EXT_external_memory_host (host_import.h): the alignment of an imported host range
    // (pointer and size), 0 when the device does not have the extension.
    uint64_t host_import_alignment() const { return host_import_alignment_; }
    PFN_vkGetMemoryHostPointerPropertiesEXT host_pointer_properties() const { return host_pointer_properties_; }

    // The queue expert copies go to (docs/device_graph.md "Expert copies on a transfer
    // queue"): a queue of a family with transfer and without graphics or compute where the
    // device has one (discrete GPUs' copy engines), else a second queue of the compute
    // family, else the compute queue itself (lavapipe), so that every device runs the same
    // submissions and semaphores. VK_NULL_HANDLE when off: MST_VULKAN_TRANSFER_QUEUE=0 or
    // no timeline semaphores (VK_KHR_timeline_semaphore); then, or with why_not, every copy
    // stays on the compute queue.
    VkQueue transfer_queue() const { return transfer_queue_; }
    uint32_t transfer_family() const { return transfer_family_; }
    const std::string &transfer_queue_kind() const { return transfer_queue_kind_; }
    PFN_vkWaitSemaphoresKHR wait_semaphores() const { return wait_semaphores_; }
    PFN_vkGetSemaphoreCounterValueKHR semaphore_counter_value() const { return semaphore_counter_value_; }
    // Buffers both queues use are shared concurrently by the two families when they differ
    // (no ownership transfer per copy); sets bci's sharing mode and families.
    void set_sharing(VkBufferCreateInfo &bci) const;

    // A memory type index with all of `required` (and as many of `preferred` as possible),
    // allowed by type_bits; -1 when none.
    int32_t find_memory_type(uint32_t type_bits, VkMemoryPropertyFlags required, VkMemoryPropertyFlags preferred) const;

private:
    VkInstance instance_ = VK_NULL_HANDLE;  // the shared one: not this context's to destroy
    VkPhysicalDevice physical_ = VK_NULL_HANDLE;
    VkDevice device_ = VK_NULL_HANDLE;
    VkQueue queue_ = VK_NULL_HANDLE;
    uint32_t queue_family_ = 0;
    VulkanDeviceInfo info_;
    VkPhysicalDeviceProperties props_{};
    VkPhysicalDeviceMemoryProperties mem_props_{};
    bool subgroup_arithmetic_ = false;
    uint32_t subgroup_size_ = 1;
    bool unified_memory_ = false;
    PFN_vkCmdPushDescriptorSetKHR push_descriptor_ = nullptr;
    bool cooperative_matrix_ = false;
    std::string cooperative_matrix_why_not_;
    uint64_t host_import_alignment_ = 0;
    PFN_vkGetMemoryHostPointerPropertiesEXT host_pointer_properties_ = nullptr;
    VkQueue transfer_queue_ = VK_NULL_HANDLE;
    uint32_t transfer_family_ = 0;
    std::string transfer_queue_kind_;
    uint32_t sharing_families_[2] = {0, 0};
    PFN_vkWaitSemaphoresKHR wait_semaphores_ = nullptr;
    PFN_vkGetSemaphoreCounterValueKHR semaphore_counter_value_ = nullptr;
};

// Every physical device and whether it is usable (for listings and error messages).
// Empty when no Vulkan loader or driver is present.
std::vector<VulkanDeviceInfo> vk_list_devices();

}  // namespace mst
