#include "backends/vulkan/vulkan_context.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "backends/vulkan/cooperative_matrix.h"
#include "backends/vulkan/env_switch.h"
#include "backends/vulkan/object_counts.h"
#include "backends/vulkan/vulkan_instance.h"
#include "core/error.h"
#include "core/log.h"

namespace mst {

const char *vk_result_name(VkResult r) {
    switch (r) {
        case VK_SUCCESS: return "VK_SUCCESS";
        case VK_NOT_READY: return "VK_NOT_READY";
        case VK_TIMEOUT: return "VK_TIMEOUT";
        case VK_INCOMPLETE: return "VK_INCOMPLETE";
        case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
        case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
        case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
        case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
        case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
        case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
        case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
        case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
        case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
        case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
        case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
        case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
        case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
        default: return "VkResult(other)";
    }
}

void vk_check(VkResult r, const char *call) {
    if (r != VK_SUCCESS) fail(MST_ERR_BACKEND, "vulkan: {} failed: {} ({})", call, vk_result_name(r), int(r));
}

const char *vk_device_type_name(VkPhysicalDeviceType t) {
    switch (t) {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
        case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU implementation";
        default: return "other";
    }
}

namespace {

// Lower is better: the ranking the issue and DESIGN.md ask for.
int type_rank(VkPhysicalDeviceType t) {
    switch (t) {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
        case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
        default: return 4;
    }
}

std::vector<VkQueueFamilyProperties> queue_families(VkPhysicalDevice d) {
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(d, &n, nullptr);
    std::vector<VkQueueFamilyProperties> families(n);
    vkGetPhysicalDeviceQueueFamilyProperties(d, &n, families.data());
    families.resize(n);
    return families;
}

int32_t compute_queue_family(VkPhysicalDevice d) {
    const std::vector<VkQueueFamilyProperties> families = queue_families(d);
    const uint32_t n = uint32_t(families.size());
    // A compute family without graphics first: on discrete GPUs it is the async compute
    // queue, which nothing else uses.
    for (uint32_t i = 0; i < n; ++i)
        if ((families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && !(families[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
            return int32_t(i);
    for (uint32_t i = 0; i < n; ++i)
        if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) return int32_t(i);
    return -1;
}

// A family with transfer and without graphics or compute (a discrete GPU's copy engines),
// else -1.
int32_t transfer_only_family(VkPhysicalDevice d) {
    const std::vector<VkQueueFamilyProperties> families = queue_families(d);
    const uint32_t n = uint32_t(families.size());
    for (uint32_t i = 0; i < n; ++i)
        if ((families[i].queueFlags & VK_QUEUE_TRANSFER_BIT) &&
            !(families[i].queueFlags & (VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT)) && families[i].queueCount > 0)
            return int32_t(i);
    return -1;
}

uint32_t queue_count(VkPhysicalDevice d, uint32_t family) {
    const std::vector<VkQueueFamilyProperties> families = queue_families(d);
    return family < families.size() ? families[family].queueCount : 0;
}

VulkanDeviceInfo describe(VkPhysicalDevice d, uint32_t index) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(d, &p);
    VkPhysicalDeviceMemoryProperties m;
    vkGetPhysicalDeviceMemoryProperties(d, &m);
    VulkanDeviceInfo info;
    info.index = index;
    info.name = p.deviceName;
    info.type = p.deviceType;
    for (uint32_t h = 0; h < m.memoryHeapCount; ++h)
        if (m.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
            info.device_local_bytes = std::max<uint64_t>(info.device_local_bytes, m.memoryHeaps[h].size);
    if (p.apiVersion < VK_API_VERSION_1_1)
        info.why_not = "it supports only Vulkan 1.0 (1.1 is needed)";
    else if (compute_queue_family(d) < 0)
        info.why_not = "it has no compute queue";
    info.usable = info.why_not.empty();
    return info;
}

std::string lower(std::string s) {
    for (char &c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

std::vector<VulkanDeviceInfo> vk_list_devices() {
    std::vector<VulkanDeviceInfo> out;
    try {
        const std::vector<VkPhysicalDevice> &devices = vulkan_instance().physical_devices;
        for (uint32_t i = 0; i < devices.size(); ++i) out.push_back(describe(devices[i], i));
    } catch (const Error &) {
        // No Vulkan loader or driver: an empty listing.
    }
    return out;
}

VulkanContext::VulkanContext(const std::string &selector_in, bool gpu_only) {
    const VulkanInstance &shared = vulkan_instance();
    instance_ = shared.instance;
    try {
        const std::vector<VkPhysicalDevice> &devices = shared.physical_devices;
        std::vector<VulkanDeviceInfo> infos;
        for (uint32_t i = 0; i < devices.size(); ++i) infos.push_back(describe(devices[i], i));
        if (infos.empty()) fail(MST_ERR_BACKEND, "vulkan: the Vulkan loader found no device");

        std::string selector = selector_in;
        std::string source = "the device option";
        if (selector.empty()) {
            const char *env = std::getenv("MST_VULKAN_DEVICE");
            if (env && *env) {
                selector = env;
                source = "MST_VULKAN_DEVICE";
            }
        }
        std::string listing;
        for (const VulkanDeviceInfo &d : infos)
            listing += fmt::format("{}{}: {} ({}{}{})", listing.empty() ? "" : "; ", d.index, d.name,
                                   vk_device_type_name(d.type), d.usable ? "" : ", unusable: ", d.why_not);

        int32_t chosen = -1;
        if (!selector.empty()) {
            const bool numeric = std::all_of(selector.begin(), selector.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
            for (const VulkanDeviceInfo &d : infos)
                if (numeric ? d.index == uint32_t(std::stoul(selector)) : lower(d.name).find(lower(selector)) != std::string::npos) {
                    chosen = int32_t(d.index);
                    break;
                }
            if (chosen < 0)
                fail(MST_ERR_BACKEND, "vulkan: {} '{}' names no device (devices: {})", source, selector, listing);
            if (!infos[size_t(chosen)].usable)
                fail(MST_ERR_BACKEND, "vulkan: device {} ({}) is not usable: {}", chosen, infos[size_t(chosen)].name,
                     infos[size_t(chosen)].why_not);
        } else {
            for (const VulkanDeviceInfo &d : infos) {
                if (!d.usable || (gpu_only && d.type == VK_PHYSICAL_DEVICE_TYPE_CPU)) continue;
                if (chosen < 0 || type_rank(d.type) < type_rank(infos[size_t(chosen)].type) ||
                    (type_rank(d.type) == type_rank(infos[size_t(chosen)].type) &&
                     d.device_local_bytes > infos[size_t(chosen)].device_local_bytes))
                    chosen = int32_t(d.index);
            }
            if (chosen < 0)
                fail(MST_ERR_BACKEND, "vulkan: no usable {}device (devices: {})", gpu_only ? "GPU " : "", listing);
        }
        info_ = infos[size_t(chosen)];
        physical_ = devices[size_t(chosen)];
        vkGetPhysicalDeviceProperties(physical_, &props_);
        vkGetPhysicalDeviceMemoryProperties(physical_, &mem_props_);

        VkPhysicalDeviceSubgroupProperties sub{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
        VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
        p2.pNext = &sub;
        vkGetPhysicalDeviceProperties2(physical_, &p2);
        subgroup_size_ = std::max(1u, sub.subgroupSize);
        subgroup_arithmetic_ = (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                               (sub.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                               (sub.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT);
        if (env_switch("MST_VULKAN_NO_SUBGROUP", false, "the shared-memory reductions",
                       "subgroup arithmetic where the device has it"))
            subgroup_arithmetic_ = false;  // to test the fallback shaders on a device that has them
        // Unified when every device-local heap's memory can also be mapped by the host.
        unified_memory_ = info_.type == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU || info_.type == VK_PHYSICAL_DEVICE_TYPE_CPU;
        if (env_switch("MST_VULKAN_SEPARATE_MEMORY", false, "a discrete GPU's memory path",
                       "unified memory where the device has it"))
            unified_memory_ = false;  // to test a discrete GPU's path (staging, result copies) on lavapipe

        queue_family_ = uint32_t(compute_queue_family(physical_));
        uint32_t n_ext = 0;
        vkEnumerateDeviceExtensionProperties(physical_, nullptr, &n_ext, nullptr);
        std::vector<VkExtensionProperties> exts(n_ext);
        vkEnumerateDeviceExtensionProperties(physical_, nullptr, &n_ext, exts.data());
        // Expert copies on a queue of their own, ordered by a timeline semaphore
        // (transfer_lane.h); MST_VULKAN_TRANSFER_QUEUE=0 keeps main's one queue.
        const bool want_transfer = env_switch("MST_VULKAN_TRANSFER_QUEUE", true,
                                              "expert copies on a transfer queue, waited for by timeline semaphore",
                                              "every copy on the compute queue");
        const bool has_timeline_ext = std::any_of(exts.begin(), exts.end(), [](const VkExtensionProperties &e) {
            return std::string(e.extensionName) == VK_KHR_TIMELINE_SEMAPHORE_EXTENSION_NAME;
        });
        VkPhysicalDeviceTimelineSemaphoreFeaturesKHR timeline{
            VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES_KHR};
        if (has_timeline_ext) {
            VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
            f2.pNext = &timeline;
            vkGetPhysicalDeviceFeatures2(physical_, &f2);
        }
        const bool transfer_lane = want_transfer && has_timeline_ext && timeline.timelineSemaphore;
        // Which queue: a transfer-only family, else a second queue of the compute family,
        // else the compute queue (separate submissions, the same semaphores).
        const int32_t copy_family = transfer_lane ? transfer_only_family(physical_) : -1;
        const bool second_compute_queue = transfer_lane && copy_family < 0 && queue_count(physical_, queue_family_) >= 2;
        const float priorities[2] = {1.0f, 1.0f};
        VkDeviceQueueCreateInfo qcis[2]{};
        for (VkDeviceQueueCreateInfo &q : qcis) {
            q.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO;
            q.queueCount = 1;
            q.pQueuePriorities = priorities;
        }
        qcis[0].queueFamilyIndex = queue_family_;
        if (second_compute_queue) qcis[0].queueCount = 2;
        if (copy_family >= 0) qcis[1].queueFamilyIndex = uint32_t(copy_family);
        const bool no_push = env_switch("MST_VULKAN_NO_PUSH_DESCRIPTOR", false, "descriptor sets from pools",
                                        "push descriptors where the device has them");
        const bool has_push = !no_push && std::any_of(exts.begin(), exts.end(), [](const VkExtensionProperties &e) {
            return std::string(e.extensionName) == VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
        });
        std::vector<const char *> ext_names;
        if (has_push) ext_names.push_back(VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
        // Host memory the device copies from directly (streamed experts without a staging
        // memcpy, host_import.h); VK_KHR_external_memory, which it needs, is core in 1.1.
        const bool has_host_import = std::any_of(exts.begin(), exts.end(), [](const VkExtensionProperties &e) {
            return std::string(e.extensionName) == VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME;
        });
        if (has_host_import) ext_names.push_back(VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME);
        if (transfer_lane) ext_names.push_back(VK_KHR_TIMELINE_SEMAPHORE_EXTENSION_NAME);
        VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
        dci.queueCreateInfoCount = copy_family >= 0 ? 2 : 1;
        dci.pQueueCreateInfos = qcis;
        VkPhysicalDeviceTimelineSemaphoreFeaturesKHR enable_timeline{
            VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES_KHR};
        enable_timeline.timelineSemaphore = VK_TRUE;
        if (transfer_lane) dci.pNext = &enable_timeline;
        CooperativeMatrixSupport coopmat = probe_cooperative_matrix(instance_, physical_, subgroup_size_);
        coopmat.enable(ext_names, dci);
        cooperative_matrix_ = coopmat.usable;
        cooperative_matrix_why_not_ = coopmat.why_not;
        dci.enabledExtensionCount = uint32_t(ext_names.size());
        dci.ppEnabledExtensionNames = ext_names.data();
        vk_check(vkCreateDevice(physical_, &dci, nullptr, &device_), "vkCreateDevice");
        vulkan_object_created(VulkanObject::device);
        if (has_push)
            push_descriptor_ = reinterpret_cast<PFN_vkCmdPushDescriptorSetKHR>(
                vkGetDeviceProcAddr(device_, "vkCmdPushDescriptorSetKHR"));
        vkGetDeviceQueue(device_, queue_family_, 0, &queue_);
        if (transfer_lane) {
            wait_semaphores_ =
                reinterpret_cast<PFN_vkWaitSemaphoresKHR>(vkGetDeviceProcAddr(device_, "vkWaitSemaphoresKHR"));
            semaphore_counter_value_ = reinterpret_cast<PFN_vkGetSemaphoreCounterValueKHR>(
                vkGetDeviceProcAddr(device_, "vkGetSemaphoreCounterValueKHR"));
        }
        if (wait_semaphores_ && semaphore_counter_value_) {
            if (copy_family >= 0) {
                transfer_family_ = uint32_t(copy_family);
                vkGetDeviceQueue(device_, transfer_family_, 0, &transfer_queue_);
                transfer_queue_kind_ = fmt::format("transfer-only family {}", copy_family);
            } else {
                transfer_family_ = queue_family_;
                vkGetDeviceQueue(device_, queue_family_, second_compute_queue ? 1 : 0, &transfer_queue_);
                transfer_queue_kind_ = second_compute_queue ? "a second queue of the compute family"
                                                            : "the compute queue (one queue: separate submissions)";
            }
        } else {
            transfer_queue_kind_ = !want_transfer ? "off (MST_VULKAN_TRANSFER_QUEUE=0)"
                                                  : "off (the device has no timeline semaphores)";
        }
        sharing_families_[0] = queue_family_;
        sharing_families_[1] = transfer_family_;
        if (has_host_import) {
            VkPhysicalDeviceExternalMemoryHostPropertiesEXT hp{
                VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT};
            VkPhysicalDeviceProperties2 hp2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
            hp2.pNext = &hp;
            vkGetPhysicalDeviceProperties2(physical_, &hp2);
            host_pointer_properties_ = reinterpret_cast<PFN_vkGetMemoryHostPointerPropertiesEXT>(
                vkGetDeviceProcAddr(device_, "vkGetMemoryHostPointerPropertiesEXT"));
            if (host_pointer_properties_) host_import_alignment_ = std::max<uint64_t>(1, hp.minImportedHostPointerAlignment);
        }
        log(MST_LOG_INFO, "vulkan: device {} '{}' ({}), {} MiB device-local, subgroup {}{}, {}", info_.index,
            info_.name, vk_device_type_name(info_.type), info_.device_local_bytes >> 20, subgroup_size_,
            subgroup_arithmetic_ ? " with arithmetic" : " (no arithmetic: shared-memory reductions)",
            unified_memory_ ? "unified memory" : "separate memory");
        log(MST_LOG_INFO, "vulkan: expert copies on {}", transfer_queue_kind_);
    } catch (...) {
        if (device_) {
            vkDestroyDevice(device_, nullptr);
            vulkan_object_destroyed(VulkanObject::device);
        }
        throw;
    }
}

VulkanContext::~VulkanContext() {
    if (device_) {
        vkDestroyDevice(device_, nullptr);
        vulkan_object_destroyed(VulkanObject::device);
    }
}

void VulkanContext::set_sharing(VkBufferCreateInfo &bci) const {
    if (transfer_queue_ == VK_NULL_HANDLE || transfer_family_ == queue_family_) {
        bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
        return;
    }
    // Concurrent rather than an ownership transfer (a release barrier on the transfer queue
    // and an acquire on the compute queue for every copied range): buffers have no layout
    // or compression that exclusive ownership would keep, and the acquire barriers would
    // have to be in the compute command buffers, which are replayed word for word.
    bci.sharingMode = VK_SHARING_MODE_CONCURRENT;
    bci.queueFamilyIndexCount = 2;
    bci.pQueueFamilyIndices = sharing_families_;
}

int32_t VulkanContext::find_memory_type(uint32_t type_bits, VkMemoryPropertyFlags required,
                                        VkMemoryPropertyFlags preferred) const {
    int32_t best = -1;
    int best_score = -1;
    for (uint32_t i = 0; i < mem_props_.memoryTypeCount; ++i) {
        if (!(type_bits & (1u << i))) continue;
        const VkMemoryPropertyFlags f = mem_props_.memoryTypes[i].propertyFlags;
        if ((f & required) != required) continue;
        const int score = __builtin_popcount(f & preferred);
        if (score > best_score) {
            best = int32_t(i);
            best_score = score;
        }
    }
    return best;
}

}  // namespace mst
