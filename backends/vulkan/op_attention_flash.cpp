// When a prefill's attention takes the cooperative-matrix kernel (shaders/attention_flash.comp):
// 64 query rows (every head of a GQA group, 64 / group queries) a workgroup against blocks of
// 32 keys, S = Q K^T and O += P V as 16 x 16 x 16 f16 products. It takes the calls the blocked
// kernel (op_attention_prefill.cpp) would take, except those it does not cover, which keep the
// blocked kernel: head or value sizes that are not multiples of 16 (both are at most 128
// there), GQA groups above 64, and devices whose shared memory holds not even its unpadded
// tiles. Windows and sinks it covers.
#include <cstdlib>
#include <string>

#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"
#include "core/log.h"

namespace mst {
namespace {

constexpr uint32_t kRows = 64, kKeys = 32, kMaxDim = 128;  // ROWS, BKV, DMAX of the shader

const char *mode_name(VulkanBackend::FlashAttention m) {
    switch (m) {
        case VulkanBackend::FlashAttention::automatic: return "auto";
        case VulkanBackend::FlashAttention::emulated: return "emulated";
        case VulkanBackend::FlashAttention::off: return "off";
    }
    return "?";
}

}  // namespace

uint32_t VulkanBackend::flash_attention_shared_bytes(CoopPrecision precision, bool pad) {
    // The shader's sh[]: K (and its lo half under the split) and V rows of DMAX / 8 (+ pad)
    // uvec4 a key, and 4 subgroup regions of 16 rows of BKV / 4 (+ pad) uvec4.
    const uint32_t row = kMaxDim / 8 + (pad ? 1 : 0), staged = precision == CoopPrecision::f16 ? 2 : 3;
    const uint32_t region = 16 * (kKeys / 4 + (pad ? 1 : 0));
    return 16 * (kKeys * row * staged + 4 * region);
}

uint32_t VulkanBackend::flash_attention_queries(const AttentionShape &s) const {
    if (flash_attention_ == FlashAttention::off) return 0;
    if (flash_attention_ == FlashAttention::automatic && !ctx_->cooperative_matrix()) return 0;
    if (blocked_attention_query_blocks(s) == 0) return 0;  // not a prefill the blocked kernel takes
    if (s.head_dim % 16 != 0 || s.v_dim % 16 != 0 || s.head_dim > kMaxDim || s.v_dim > kMaxDim) return 0;
    if (s.group == 0 || s.group > kRows || s.n_heads % s.group != 0) return 0;
    if (flash_attention_shared_bytes(coop_precision_, false) > ctx_->properties().limits.maxComputeSharedMemorySize)
        return 0;
    return kRows / s.group;
}

void VulkanBackend::record_flash_attention(const AttentionShape &s, uint32_t queries, const BufferSlice &q,
                                           const BufferSlice &k, const BufferSlice &v, const BufferSlice &sinks,
                                           const BufferSlice &out) {
    struct {
        uint32_t n_tokens, n_heads, group, head_dim, v_dim, pos0, k_head, v_head, k_row, v_row;
        float scale;
        uint32_t window, has_sinks, n_ctx, tq;
    } push{s.n_tokens, s.n_heads, s.group, s.head_dim, s.v_dim, s.pos0, s.k_head, s.v_head, s.k_row, s.v_row,
           s.scale, s.window, s.sinks ? 1u : 0u, s.pos0 + s.n_tokens, queries};
    // Padded rows where they fit (lavapipe's 32 KiB takes the split's tiles only unpadded).
    const bool pad =
        flash_attention_shared_bytes(coop_precision_, true) <= ctx_->properties().limits.maxComputeSharedMemorySize;
    const bool coop = flash_attention_ == FlashAttention::automatic;
    const VulkanPipeline &pipeline = pipelines_->get(coop ? "attention_flash_coop" : "attention_flash", 6,
                                                     {coop_precision_constant(coop_precision_), pad ? 1u : 0u});
    // The output stands in for the scratch binding, which the shader does not read.
    stream_->dispatch(pipeline, {q, k, v, out, out, sinks}, &push, sizeof push, s.n_heads / s.group,
                      (s.n_tokens + queries - 1) / queries);
    ++flash_attention_dispatches_;
}

void VulkanBackend::configure_flash_attention_from_environment() {
    // On where the device has cooperative matrices: on an H100 it passed its unit tests and
    // the golden suites and took a 512-token prefill's attention 2.4x faster than the
    // blocked kernel (docs/gpu_prefill.md).
    flash_attention_ = FlashAttention::automatic;
    if (const char *env = std::getenv("MST_VULKAN_FLASH_ATTENTION"); env && *env) {
        const std::string v = env;
        if (v == "auto") flash_attention_ = FlashAttention::automatic;
        else if (v == "emulated") flash_attention_ = FlashAttention::emulated;
        else if (v == "off") flash_attention_ = FlashAttention::off;
        else
            fail(MST_ERR_INVALID_ARGUMENT,
                 "MST_VULKAN_FLASH_ATTENTION='{}': expected auto (the cooperative-matrix kernel where the device has "
                 "cooperative matrices, the default), emulated (its float build, any device) or off (the blocked "
                 "kernel)",
                 v);
    }
    const bool coop = flash_attention_ == FlashAttention::automatic && ctx_->cooperative_matrix();
    log(MST_LOG_INFO, "vulkan: prefill attention: {} (MST_VULKAN_FLASH_ATTENTION={})",
        coop ? "cooperative-matrix kernel"
             : flash_attention_ == FlashAttention::emulated ? "cooperative-matrix tiling, float products"
                                                             : "blocked kernel",
        mode_name(flash_attention_));
}

}  // namespace mst
