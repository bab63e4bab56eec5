// The router's softmax top-k on the device (backends/device_routing.h,
// shaders/softmax_topk.comp): the logits are read where the router product left them and
// the ids and weights become results of the batch. With MST_VULKAN_ROUTER_TOPK_FUSION, one
// token's top-k of a router product still deferred (op_fusion.cpp: its norm folded in) is
// recorded with the product as one dispatch (matvec_fused.comp's matvec_norm_topk_*): the
// product's last workgroup to finish ranks the experts, where a dependent dispatch and its
// barrier level would follow.
#include "backends/vulkan/env_switch.h"
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
    if (n_tokens == 1 && softmax_topk_fused(logits, n_experts, k, renormalize, ids, weights)) return;
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

void VulkanBackend::configure_router_topk_fusion_from_environment() {
    router_topk_fusion_ = env_switch("MST_VULKAN_ROUTER_TOPK_FUSION", router_topk_fusion_,
                                     "one token's router product and softmax_topk in one dispatch",
                                     "the router product and softmax_topk as two dispatches in two levels");
}

void VulkanBackend::set_router_topk_fusion(bool on) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    record_deferred_ops();
    router_topk_fusion_ = on;
}

bool VulkanBackend::router_topk_fusion_fits(std::string *why) const {
    const char *stop = !router_topk_fusion_ ? "the router top-k fusion is off (MST_VULKAN_ROUTER_TOPK_FUSION=0)"
                       : !attention_fusion_ ? "the attention fusion, which defers the router's norm, is off "
                                              "(MST_VULKAN_ATTENTION_FUSION=0)"
                       : !use_matvec_       ? "one token's products take matmul.comp (MST_VULKAN_MATVEC=0)"
                       : !use_norm_vec4_    ? "norms take norm.comp (MST_VULKAN_NORM_VEC4=0)"
                                            : nullptr;
    if (stop) {
        if (why) *why = stop;
        return false;
    }
    // The ranking runs on the product's workgroup as softmax_topk_rank.comp's 128 lanes: a
    // dense shape of another size (MST_VULKAN_MATVEC_TUNING) keeps the two dispatches.
    if (matvec_tuning_.dense.threads() != 128) {
        if (why) *why = "the dense shape " + matvec_tuning_.dense.name() + " is not 128 invocations";
        return false;
    }
    return true;
}

bool VulkanBackend::softmax_topk_fused(const float *logits, int32_t n_experts, int32_t k, bool renormalize,
                                       int32_t *ids, float *weights) {
    if (!stream_->in_batch() || !router_topk_fusion_fits(nullptr)) return false;
    const int i = find_deferred(DeferredOp::Kind::norm_matvec, logits);
    if (i < 0 || deferred_[size_t(i)].rows != n_experts) return false;
    if (!topk_counter_) topk_counter_ = std::make_unique<VulkanBuffer>(*ctx_, 16, MemoryKind::Device);
    const BufferSlice counter = whole(*topk_counter_);
    if (!topk_counter_zeroed_) {
        // Once: each dispatch's last workgroup sets it back to 0. The fill writes only the
        // counter, so it may go ahead of the deferred ops.
        const DeferredHold hold(*this, true);
        stream_->fill_zero(counter);
        topk_counter_zeroed_ = true;
    }
    const uint64_t out_bytes = uint64_t(k) * 4;
    const BufferSlice is = stream_->output_buffer(out_bytes), ws = stream_->output_buffer(out_bytes);
    const DeferredOp &op = deferred_[size_t(i)];
    const BufferSlice reads[] = {op.matrix, op.x, op.weight}, writes[] = {op.product, op.y, is, ws, counter};
    if (!fuses_ahead(size_t(i), reads, writes)) return false;
    record_fused(size_t(i), [&](const DeferredOp &d) {
        struct {
            uint32_t rows, cols;
            float eps, offset;
            uint32_t write_h, k, renormalize;
        } push{uint32_t(d.rows), uint32_t(d.cols), d.eps, d.offset, 1u, uint32_t(k), renormalize ? 1u : 0u};
        const uint32_t gx = uint32_t(dense_groups(d.rows));
        stream_->dispatch(fused_matvec_pipeline("norm_topk", d.dtype),
                          {d.matrix, d.x, d.product, d.weight, d.y, is, ws, counter}, &push, sizeof push, gx);
        ++fused_norm_products_;
        ++fused_router_topks_;
    });
    stream_->output(is, ids, out_bytes);
    stream_->output(ws, weights, out_bytes);
    return true;
}

}  // namespace mst
