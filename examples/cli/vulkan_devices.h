// The Vulkan devices `moestream info` lists, by the index --vulkan-device and
// MST_VULKAN_DEVICE take.
#pragma once

namespace mst::cli {

// One line per device (index, name, type, memory, and why not when it is unusable), or
// why there is none, on stdout.
void print_vulkan_devices();

}  // namespace mst::cli
