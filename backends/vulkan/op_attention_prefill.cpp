// When attention takes the prefill kernel (shaders/attention_blocked.comp): a block of 16
// queries of one head against blocks of 32 keys in shared memory with an online softmax,
// so each key and value row is read once per 16 queries rather than once per query.
// Taken from as many queries as the GEMM's threshold (op_gemm.cpp) and for head sizes up
// to 128; decode steps and MLA's 512-wide latent rows keep attention.comp. The dispatch
// is record_attention's (op_attention.cpp): both shaders take the same push constants.
#include "backends/vulkan/vulkan_backend.h"

namespace mst {
namespace {

constexpr uint32_t kQueriesPerGroup = 16, kMaxHeadDim = 128;  // BQ, DMAX of the shader

}  // namespace

uint32_t VulkanBackend::blocked_attention_query_blocks(const AttentionShape &s) const {
    if (gemm_kernel_ == GemmKernel::off || int64_t(s.n_tokens) < gemm_min_tokens_) return 0;
    if (s.head_dim > kMaxHeadDim || s.v_dim > kMaxHeadDim) return 0;
    return (s.n_tokens + kQueriesPerGroup - 1) / kQueriesPerGroup;
}

}  // namespace mst
