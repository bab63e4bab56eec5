#include "vulkan_devices.h"

#include <fmt/format.h>

#include "human.h"

#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/vulkan_context.h"
#endif

namespace mst::cli {

void print_vulkan_devices() {
#ifdef MST_HAVE_VULKAN
    const std::vector<VulkanDeviceInfo> devices = vk_list_devices();
    if (devices.empty()) {
        fmt::print("Vulkan devices:      none (no Vulkan loader or driver found)\n");
        return;
    }
    fmt::print("Vulkan devices:      (pick one with --vulkan-device INDEX or MST_VULKAN_DEVICE)\n");
    for (const VulkanDeviceInfo &d : devices)
        fmt::print("  {}: {} ({}, {}){}\n", d.index, d.name, vk_device_type_name(d.type),
                   bytes_str(d.device_local_bytes), d.usable ? "" : " not usable: " + d.why_not);
#else
    fmt::print("Vulkan devices:      none (this build has no Vulkan backend)\n");
#endif
}

}  // namespace mst::cli
