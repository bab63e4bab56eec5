#include "backends/vulkan/vulkan_instance.h"

#include <mutex>

#include "backends/vulkan/object_counts.h"
#include "backends/vulkan/vulkan_context.h"
#include "core/error.h"

namespace mst {
namespace {

VulkanInstance create() {
    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "moestream";
    app.pEngineName = "moestream";
    app.apiVersion = VK_API_VERSION_1_1;
    VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ci.pApplicationInfo = &app;
    VulkanInstance v;
    const VkResult r = vkCreateInstance(&ci, nullptr, &v.instance);
    if (r != VK_SUCCESS)
        fail(MST_ERR_BACKEND, "vulkan: no Vulkan driver is usable (vkCreateInstance failed: {}); install one "
             "(e.g. mesa-vulkan-drivers) or use backend \"cpu\"", vk_result_name(r));
    vulkan_object_created(VulkanObject::instance);
    uint32_t n = 0;
    VkResult e = vkEnumeratePhysicalDevices(v.instance, &n, nullptr);
    if (e == VK_SUCCESS) {
        v.physical_devices.resize(n);
        e = vkEnumeratePhysicalDevices(v.instance, &n, v.physical_devices.data());
        v.physical_devices.resize(n);
    }
    if (e != VK_SUCCESS) {
        vkDestroyInstance(v.instance, nullptr);  // not kept: the next call tries again
        vulkan_object_destroyed(VulkanObject::instance);
        vk_check(e, "vkEnumeratePhysicalDevices");
    }
    return v;
}

}  // namespace

const VulkanInstance &vulkan_instance() {
    static std::mutex mutex;
    static VulkanInstance *shared = nullptr;  // never deleted (vulkan_instance.h says why)
    const std::lock_guard<std::mutex> lock(mutex);
    if (!shared) shared = new VulkanInstance(create());
    return *shared;
}

}  // namespace mst
