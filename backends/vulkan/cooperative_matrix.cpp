#include "backends/vulkan/cooperative_matrix.h"

#include <algorithm>

#include "backends/vulkan/env_switch.h"

namespace mst {

CooperativeMatrixSupport probe_cooperative_matrix(VkInstance instance, VkPhysicalDevice physical,
                                                  uint32_t subgroup_size) {
    CooperativeMatrixSupport s;
    if (env_switch("MST_VULKAN_NO_COOPMAT", false, "the portable GEMM, cooperative matrices hidden",
                   "cooperative matrices where the device has them")) {
        s.why_not = "MST_VULKAN_NO_COOPMAT is set";
        return s;
    }
    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(physical, nullptr, &n, nullptr);
    std::vector<VkExtensionProperties> exts(n);
    vkEnumerateDeviceExtensionProperties(physical, nullptr, &n, exts.data());
    auto has = [&](const char *name) {
        return std::any_of(exts.begin(), exts.end(), [&](const VkExtensionProperties &e) { return std::string(e.extensionName) == name; });
    };
    if (!has(VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME) || !has(VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME)) {
        s.why_not = "the device has no VK_NV_cooperative_matrix (or no VK_KHR_shader_float16_int8)";
        return s;
    }
    if (subgroup_size != 32) {
        s.why_not = "the cooperative-matrix GEMM needs subgroups of 32, the device has " + std::to_string(subgroup_size);
        return s;
    }
    s.coopmat.pNext = &s.float16;
    VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    f2.pNext = &s.coopmat;
    vkGetPhysicalDeviceFeatures2(physical, &f2);
    if (!s.coopmat.cooperativeMatrix || !s.float16.shaderFloat16) {
        s.why_not = "the device reports cooperativeMatrix or shaderFloat16 as unsupported";
        return s;
    }
    auto props_fn = reinterpret_cast<PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV>(
        vkGetInstanceProcAddr(instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV"));
    if (!props_fn) {
        s.why_not = "the loader has no vkGetPhysicalDeviceCooperativeMatrixPropertiesNV";
        return s;
    }
    uint32_t n_props = 0;
    props_fn(physical, &n_props, nullptr);
    std::vector<VkCooperativeMatrixPropertiesNV> props(n_props, {VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV});
    props_fn(physical, &n_props, props.data());
    const bool shape = std::any_of(props.begin(), props.end(), [](const VkCooperativeMatrixPropertiesNV &p) {
        return p.MSize == 16 && p.NSize == 16 && p.KSize == 16 && p.AType == VK_COMPONENT_TYPE_FLOAT16_NV &&
               p.BType == VK_COMPONENT_TYPE_FLOAT16_NV && p.CType == VK_COMPONENT_TYPE_FLOAT32_NV &&
               p.DType == VK_COMPONENT_TYPE_FLOAT32_NV && p.scope == VK_SCOPE_SUBGROUP_NV;
    });
    if (!shape) {
        s.why_not = "the device offers no 16x16x16 f16 x f16 + f32 subgroup cooperative matrix";
        return s;
    }
    s.coopmat = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    s.coopmat.cooperativeMatrix = VK_TRUE;
    s.float16 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES_KHR};
    s.float16.shaderFloat16 = VK_TRUE;
    s.usable = true;
    return s;
}

void CooperativeMatrixSupport::enable(std::vector<const char *> &extensions, VkDeviceCreateInfo &dci) {
    if (!usable) return;
    extensions.push_back(VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    extensions.push_back(VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
    float16.pNext = const_cast<void *>(dci.pNext);
    coopmat.pNext = &float16;
    dci.pNext = &coopmat;
}

}  // namespace mst
