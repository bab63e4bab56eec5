// When attention takes the prefill kernel (shaders/attention_blocked.comp): a block of 16
// queries of one head against blocks of 32 keys (16 where the device's shared memory is
// too small for 32: blocked_attention_keys_per_block) with an online softmax,
// so each key and value row is read once per 16 queries rather than once per query.
// Taken from as many queries as the GEMM's threshold (op_gemm.cpp) and for head sizes up
// to 128; decode steps and MLA's 512-wide latent rows keep attention.comp. The dispatch
// is record_attention's (op_attention.cpp): both shaders take the same push constants.
#include "backends/vulkan/vulkan_backend.h"

namespace mst {
namespace {

constexpr uint32_t kQueriesPerGroup = 16, kMaxHeadDim = 128;  // BQ, DMAX of the shader

// The shader's shared memory with `keys` a block: query, key and value rows of DMAX + 1
// floats, and a BQ x keys score tile.
constexpr uint32_t blocked_shared_bytes(uint32_t keys) {
    return 4 * ((kQueriesPerGroup + 2 * keys) * (kMaxHeadDim + 1) + kQueriesPerGroup * keys);
}

}  // namespace

uint32_t VulkanBackend::blocked_attention_keys_per_block() const {
    const uint32_t limit = ctx_->properties().limits.maxComputeSharedMemorySize;
    for (const uint32_t keys : {32u, 16u})
        if (blocked_shared_bytes(keys) <= limit) return keys;
    return 0;
}

uint32_t VulkanBackend::blocked_attention_query_blocks(const AttentionShape &s) const {
    if (gemm_kernel_ == GemmKernel::off || int64_t(s.n_tokens) < gemm_min_tokens_) return 0;
    if (s.head_dim > kMaxHeadDim || s.v_dim > kMaxHeadDim) return 0;
    if (blocked_attention_keys_per_block() == 0) return 0;  // not even 16 keys' tiles fit
    return (s.n_tokens + kQueriesPerGroup - 1) / kQueriesPerGroup;
}

}  // namespace mst
