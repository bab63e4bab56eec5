// Whether a device can run the cooperative-matrix GEMM (shaders/gemm.comp, COOPMAT):
// VK_NV_cooperative_matrix with a 16x16x16 f16 x f16 + f32 subgroup product, f16
// arithmetic (VK_KHR_shader_float16_int8) and subgroups of 32 (the shader's 4 x 32
// threads). The NV extension rather than VK_KHR_cooperative_matrix because the glslang
// of Debian 12 compiles only GL_NV_cooperative_matrix; NVIDIA drivers expose both.
#pragma once

#include <vulkan/vulkan.h>

#include <string>
#include <vector>

namespace mst {

struct CooperativeMatrixSupport {
    bool usable = false;
    std::string why_not;  // when not usable, for logs and skipped tests
    // What device creation must enable when usable (their pNext chain is linked by enable()).
    VkPhysicalDeviceCooperativeMatrixFeaturesNV coopmat{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDeviceShaderFloat16Int8FeaturesKHR float16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES_KHR};

    // Adds the extensions and the feature structs to a device's creation when usable.
    void enable(std::vector<const char *> &extensions, VkDeviceCreateInfo &dci);
};

// MST_VULKAN_NO_COOPMAT=1 reports the device as not usable (to run the portable GEMM on a
// device that has both).
CooperativeMatrixSupport probe_cooperative_matrix(VkInstance instance, VkPhysicalDevice physical,
                                                  uint32_t subgroup_size);

}  // namespace mst
