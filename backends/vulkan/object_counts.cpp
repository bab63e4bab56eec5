#include "backends/vulkan/object_counts.h"

#include <atomic>

namespace mst {
namespace {

std::atomic<uint64_t> g_instances_created{0};
std::atomic<int64_t> g_alive[3] = {0, 0, 0};  // by VulkanObject

}  // namespace

void vulkan_object_created(VulkanObject kind) {
    if (kind == VulkanObject::instance) g_instances_created.fetch_add(1, std::memory_order_relaxed);
    g_alive[int(kind)].fetch_add(1, std::memory_order_relaxed);
}

void vulkan_object_destroyed(VulkanObject kind) { g_alive[int(kind)].fetch_sub(1, std::memory_order_relaxed); }

VulkanObjectCounts vulkan_object_counts() {
    VulkanObjectCounts c;
    c.instances_created = g_instances_created.load(std::memory_order_relaxed);
    c.instances = g_alive[int(VulkanObject::instance)].load(std::memory_order_relaxed);
    c.devices = g_alive[int(VulkanObject::device)].load(std::memory_order_relaxed);
    c.memory_allocations = g_alive[int(VulkanObject::memory)].load(std::memory_order_relaxed);
    return c;
}

}  // namespace mst
