// Process-wide counts of the Vulkan objects the backend creates and destroys, every backend
// of the process together: how many instances were ever created, and how many instances,
// devices and memory allocations are alive now. A test creates and destroys backends and
// models many times and finds here what a cycle leaves behind (the NVIDIA driver refused
// vkCreateInstance after a test program had made many backends: bench/README.md, the H100's
// golden suites of 2026-12-07).
#pragma once

#include <cstdint>

namespace mst {

enum class VulkanObject { instance, device, memory };

struct VulkanObjectCounts {
    uint64_t instances_created = 0;  // vkCreateInstance calls that succeeded, all told
    int64_t instances = 0;           // alive now
    int64_t devices = 0;
    int64_t memory_allocations = 0;  // VkDeviceMemory: buffers' own and imported host memory
};

// Called right after the object's creation succeeded and right after its destruction.
void vulkan_object_created(VulkanObject kind);
void vulkan_object_destroyed(VulkanObject kind);

VulkanObjectCounts vulkan_object_counts();

}  // namespace mst
