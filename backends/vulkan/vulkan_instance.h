// The process's one VkInstance and its physical devices, which every Vulkan backend (and the
// device listing) shares. Created on first use and kept for the rest of the process: on an
// H100 the NVIDIA driver refused vkCreateInstance (VK_ERROR_INCOMPATIBLE_DRIVER) once a
// test program had created and destroyed an instance per backend many times
// (bench/README.md, the golden suites of 2026-12-07), and a reference count would still
// destroy it between backends that follow one another (a model per test). Each backend
// keeps a VkDevice of its own, destroyed with it. Never destroyed: at exit the driver's
// own exit handlers may already have run, and the operating system takes it back.
#pragma once

#include <vulkan/vulkan.h>

#include <vector>

namespace mst {

struct VulkanInstance {
    VkInstance instance = VK_NULL_HANDLE;
    std::vector<VkPhysicalDevice> physical_devices;  // in vkEnumeratePhysicalDevices order
};

// The shared instance, made by the first call (thread-safe). Throws MST_ERR_BACKEND naming
// the failure when no Vulkan driver is usable; a later call tries again.
const VulkanInstance &vulkan_instance();

}  // namespace mst
