// The router's softmax top-k on the device (backends/device_routing.h,
// shaders/softmax_topk.comp): the logits are read where the router product left them and
// the ids and weights become results of the batch.
#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"

namespace mst {

void VulkanBackend::softmax_topk(const float *logits, int64_t n_tokens, int32_t n_experts, int32_t k,
                                 bool renormalize, int32_t *ids, float *weights) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_softmax_topk_params(logits, n_tokens, n_experts, k, ids, weights);
    if (n_tokens == 0) return;
    if (n_tokens > int64_t(65535) * 65535)
        fail(MST_ERR_UNSUPPORTED, "softmax_topk: {} tokens in one call (at most {})", n_tokens, int64_t(65535) * 65535);
    const BufferSlice l = stream_->input(logits, uint64_t(n_tokens * n_experts) * sizeof(float));
    const uint64_t out_bytes = uint64_t(n_tokens * k) * 4;
    const BufferSlice i = stream_->output_buffer(out_bytes), w = stream_->output_buffer(out_bytes);
    const uint32_t push[4] = {uint32_t(n_tokens), uint32_t(n_experts), uint32_t(k), renormalize ? 1u : 0u};
    uint32_t gx = 0, gy = 0;
    groups_for(n_tokens, 1, gx, gy);  // a workgroup per token
    // MST_VULKAN_MOE_FUSION: every expert ranked at once (softmax_topk_rank.comp); off: k
    // passes, each a tree over the workgroup (softmax_topk.comp). The same bits either way.
    stream_->dispatch(pipelines_->get(moe_fusion_ ? "softmax_topk_rank" : "softmax_topk", 3), {l, i, w}, push,
                      sizeof push, gx, gy);
    stream_->output(i, ids, out_bytes);
    stream_->output(w, weights, out_bytes);
    submit();
}

}  // namespace mst
