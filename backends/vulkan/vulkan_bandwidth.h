// What bounds the Vulkan backend, measured on its device: device-memory bandwidth (a
// device-to-device copy), host-to-device bandwidth (a copy from host-visible memory) and
// the round trip of one submission and its wait. bench_vulkan divides bytes per token by
// these for its rooflines.
#pragma once

#include "backends/vulkan/vulkan_backend.h"

namespace mst {

struct VulkanBandwidth {
    double device_bytes_per_s = 0;          // bytes read + written per second
    double host_to_device_bytes_per_s = 0;
    double submit_wait_us = 0;              // a trivial submission, submitted and waited for
};

VulkanBandwidth vulkan_measure_bandwidth(VulkanBackend &backend);

}  // namespace mst
