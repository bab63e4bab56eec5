// Attention for a prefill (shaders/attention_blocked.comp): a block of 16 queries of one
// head against blocks of 32 keys in shared memory with an online softmax, so each key and
// value row is read once per 16 queries rather than once per query. Taken for as many
// queries as the GEMM's threshold (op_gemm.cpp) and head sizes up to 128; other shapes
// (decode steps, MLA's 512-wide latent rows) keep attention.comp.
#include "backends/vulkan/vulkan_backend.h"

namespace mst {
namespace {

constexpr uint32_t kQueriesPerGroup = 16, kMaxHeadDim = 128;  // BQ, DMAX of the shader

}  // namespace

bool VulkanBackend::record_attention_blocked(const AttentionShape &s, const BufferSlice &q, const BufferSlice &k,
                                             const BufferSlice &v, const BufferSlice &sinks, const BufferSlice &out) {
    if (gemm_kernel_ == GemmKernel::off || int64_t(s.n_tokens) < gemm_min_tokens_) return false;
    if (s.head_dim > kMaxHeadDim || s.v_dim > kMaxHeadDim) return false;
    struct {
        uint32_t n_tokens, n_heads, group, head_dim, v_dim, pos0, k_head, v_head, k_row, v_row;
        float scale;
        uint32_t window, has_sinks, n_ctx;
    } push{s.n_tokens, s.n_heads, s.group, s.head_dim, s.v_dim, s.pos0, s.k_head, s.v_head, s.k_row, s.v_row,
           s.scale, s.window, s.sinks ? 1u : 0u, s.pos0 + s.n_tokens};
    // Binding 4 (attention.comp's scores) is unused here; the output stands in for it.
    stream_->dispatch(pipelines_->get("attention_blocked", 6), {q, k, v, out, out, sinks}, &push, sizeof push,
                      s.n_heads, (s.n_tokens + kQueriesPerGroup - 1) / kQueriesPerGroup);
    ++blocked_attention_dispatches_;
    return true;
}

}  // namespace mst
