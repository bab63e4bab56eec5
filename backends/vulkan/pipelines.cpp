#include "backends/vulkan/pipelines.h"

#include <algorithm>
#include <chrono>

#include "backends/vulkan/spirv_table.h"
#include "core/error.h"

namespace mst {

// The bindings each shader writes (the `writeonly` and read-write buffers of
// shaders/*.comp); everything else it binds it only reads. test_vulkan_write_masks checks
// every compiled variant's against the writable buffers its SPIR-V declares.
uint32_t shader_write_mask(const std::string &name) {
    auto starts = [&](const char *prefix) { return name.rfind(prefix, 0) == 0; };
    if (starts("matmul")) return 1u << 2;  // matmul_* and matmul_xw_*: y
    if (starts("gemm")) return 1u << 2;  // gemm_*: y
    if (starts("matvec_id")) return (1u << 2) | (1u << 5);  // y, the miss flag
    if (starts("matvec_norm_topk")) return 0xf4u;  // y, h, ids, weights, the counter
    if (starts("matvec_norm_qkv")) return 0x194u;  // q's y, h, k's and v's y
    if (starts("matvec_norm") || starts("matvec_add")) return (1u << 2) | (1u << 4);  // y; h or r_out
    if (starts("matvec")) return 1u << 2;  // matvec_*: y
    if (starts("gather_rows")) return 1u << 2;
    if (starts("norm_rope_kv")) return (1u << 3) | (1u << 4) | (1u << 6);  // y, the K and V mirrors
    if (starts("norm_rope_qk_kv")) return (1u << 3) | (1u << 4) | (1u << 6) | (1u << 10);  // and q's y
    if (starts("norm")) return 1u << 3;
    if (starts("rope")) return 1u << 0;
    if (starts("attention_blocked")) return 1u << 3;  // before attention's rule: no scores buffer
    if (starts("attention_split_fused") || starts("attention_split_rows_fused") ||
        starts("attention_split_gqa_fused"))
        return (1u << 3) | (1u << 6) | (1u << 7);  // partials, o, the counter
    if (starts("attention_split_combine")) return 1u << 2;  // o
    if (starts("attention_split")) return 1u << 3;  // partials
    if (starts("attention")) return (1u << 3) | (1u << 4);
    if (starts("elementwise")) return 1u << 2;
    if (starts("causal_conv1d")) return (1u << 3) | (1u << 4);
    if (starts("delta_rule")) return (1u << 5) | (1u << 6);
    if (starts("combine")) return 1u << 3;
    if (starts("copy")) return 1u << 1;  // copy, copy_words
    if (starts("expert_groups_count")) return (1u << 1) | (1u << 2);  // ranks, counts
    if (starts("expert_groups_tiles")) return (1u << 2) | (1u << 3) | (1u << 4);  // offsets, two tile tables
    if (starts("expert_groups_scatter")) return 0x1e0u;  // rows, uses, token uses, the miss flag
    if (starts("l2_warm")) return 1u << 3;  // the sink (nothing reads it)
    return ~0u;  // unknown: every binding, so every hazard is seen
}

PipelineCache::~PipelineCache() {
    const VkDevice d = ctx_.device();
    for (auto &[key, p] : pipelines_) {
        vkDestroyPipeline(d, p.pipeline, nullptr);
        vkDestroyPipelineLayout(d, p.layout, nullptr);
        vkDestroyDescriptorSetLayout(d, p.set_layout, nullptr);
    }
    for (VkShaderModule m : modules_) vkDestroyShaderModule(d, m, nullptr);
}

bool PipelineCache::Less::less(const KeyView &a, const KeyView &b) {
    if (a.name != b.name) return a.name < b.name;
    return std::lexicographical_compare(a.spec, a.spec + a.n_spec, b.spec, b.spec + b.n_spec);
}

const VulkanPipeline &PipelineCache::get(std::string_view name_view, uint32_t n_bindings,
                                         std::initializer_list<uint32_t> spec_list) {
    if (auto it = pipelines_.find(KeyView{name_view, spec_list.begin(), spec_list.size()}); it != pipelines_.end())
        return it->second;

    const auto created_at = std::chrono::steady_clock::now();
    const std::string name(name_view);
    const std::vector<uint32_t> spec(spec_list);
    const SpirvModule *module = vk_spirv_find(name.c_str());
    if (!module) fail(MST_ERR_INTERNAL, "vulkan: no embedded shader '{}'", name);
    const VkDevice d = ctx_.device();
    VkShaderModuleCreateInfo smci{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    smci.codeSize = module->n_words * sizeof(uint32_t);
    smci.pCode = module->words;
    VkShaderModule shader = VK_NULL_HANDLE;
    vk_check(vkCreateShaderModule(d, &smci, nullptr, &shader), "vkCreateShaderModule");
    modules_.push_back(shader);

    VulkanPipeline p;
    p.n_bindings = n_bindings;
    p.write_mask = shader_write_mask(name);
    p.name = name;
    std::vector<VkDescriptorSetLayoutBinding> bindings(n_bindings);
    for (uint32_t i = 0; i < n_bindings; ++i)
        bindings[i] = VkDescriptorSetLayoutBinding{i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
    VkDescriptorSetLayoutCreateInfo dslci{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    dslci.bindingCount = n_bindings;
    if (ctx_.push_descriptor()) dslci.flags = VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR;
    dslci.pBindings = bindings.data();
    vk_check(vkCreateDescriptorSetLayout(d, &dslci, nullptr, &p.set_layout), "vkCreateDescriptorSetLayout");
    VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, kPushBytes};
    VkPipelineLayoutCreateInfo plci{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    plci.setLayoutCount = 1;
    plci.pSetLayouts = &p.set_layout;
    plci.pushConstantRangeCount = 1;
    plci.pPushConstantRanges = &range;
    vk_check(vkCreatePipelineLayout(d, &plci, nullptr, &p.layout), "vkCreatePipelineLayout");

    std::vector<VkSpecializationMapEntry> entries(spec.size());
    for (uint32_t i = 0; i < spec.size(); ++i) entries[i] = VkSpecializationMapEntry{i, i * 4u, 4};
    VkSpecializationInfo si{uint32_t(entries.size()), entries.data(), spec.size() * sizeof(uint32_t), spec.data()};
    VkComputePipelineCreateInfo cpci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    cpci.stage = VkPipelineShaderStageCreateInfo{VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
    cpci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    cpci.stage.module = shader;
    cpci.stage.pName = "main";
    cpci.stage.pSpecializationInfo = spec.empty() ? nullptr : &si;
    cpci.layout = p.layout;
    const VkResult r = vkCreateComputePipelines(d, VK_NULL_HANDLE, 1, &cpci, nullptr, &p.pipeline);
    if (r != VK_SUCCESS) {
        vkDestroyPipelineLayout(d, p.layout, nullptr);
        vkDestroyDescriptorSetLayout(d, p.set_layout, nullptr);
        fail(MST_ERR_BACKEND, "vulkan: vkCreateComputePipelines for shader '{}' failed: {}", name, vk_result_name(r));
    }
    ++created_;
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - created_at).count();
    create_seconds_ += took;
    return pipelines_.emplace(Key{name, spec}, p).first->second;
}

}  // namespace mst
