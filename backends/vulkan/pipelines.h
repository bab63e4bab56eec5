// Compute pipelines, one per embedded shader variant and set of specialization constants,
// created on first use. Every pipeline binds its buffers as storage buffers 0..n-1 of
// descriptor set 0 and takes up to kPushBytes of push constants.
#pragma once

#include <vulkan/vulkan.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backends/vulkan/vulkan_context.h"

namespace mst {

struct VulkanPipeline {
    VkPipeline pipeline = VK_NULL_HANDLE;
    VkPipelineLayout layout = VK_NULL_HANDLE;
    VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
    uint32_t n_bindings = 0;
    uint32_t write_mask = 0;  // bit i: the shader writes binding i (command_stream.cpp's barriers)
    std::string name;         // the shader variant, for the per-dispatch profile (MST_VULKAN_PROFILE=1)
};

class PipelineCache {
public:
    static constexpr uint32_t kPushBytes = 128;  // the minimum every device guarantees

    explicit PipelineCache(const VulkanContext &ctx) : ctx_(ctx) {}
    ~PipelineCache();
    PipelineCache(const PipelineCache &) = delete;
    PipelineCache &operator=(const PipelineCache &) = delete;

    // The pipeline of shader variant `name` (cmake/EmbedSpirv.cmake) with n_bindings
    // storage buffers; spec[i] is specialization constant i. Throws MST_ERR_BACKEND.
    const VulkanPipeline &get(const std::string &name, uint32_t n_bindings, const std::vector<uint32_t> &spec = {});

private:
    const VulkanContext &ctx_;
    std::map<std::pair<std::string, std::vector<uint32_t>>, VulkanPipeline> pipelines_;
    std::vector<VkShaderModule> modules_;
};

}  // namespace mst
