// When attention takes the split decode kernels (shaders/attention_split.comp, then
// shaders/attention_split_combine.comp): a step of a few queries against a context of
// several blocks of kSplitBlock keys. attention.comp gives such a step one workgroup per
// (head, query), each walking every position: 32 workgroups on Qwen3-30B-A3B leave most
// of a large GPU idle, and a decode step grew from about 11 ms at a few positions to
// 16-20 ms at 512 on an H100. Split, a step has heads x queries x blocks workgroups.
// MST_VULKAN_SPLIT_ATTENTION=0 keeps attention.comp, to compare the two; =N splits from N
// positions of context (at least two blocks, the default) to find where the split pays.
// With MST_VULKAN_ATTENTION_COMBINE_FUSION (on by default) the first pass's last workgroup
// of each (head, query) merges the blocks (the _fused variants, counting finished blocks on
// a counter per (query, head)), so the combine's dispatch and the barrier level before it
// go: on an H100 that level was 8.5 us of a layer's decode (docs/gpu_decode_kernels.md).
// MST_VULKAN_SPLIT_BLOCK (64, 128), MST_VULKAN_SPLIT_MERGE_ONESHOT and MST_VULKAN_SPLIT_GQA
// are to shorten that level
// (docs/gpu_decode_kernels.md, "The decode attention's latency").
#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backends/vulkan/env_switch.h"
#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"
#include "core/log.h"

namespace mst {
namespace {

constexpr uint32_t kSplitBlock = 32;      // BLOCK of the shaders

// attention_split_rows.comp's variant for blocks of `block` keys (its KEYS: block / 4).
std::string rows_variant(const char *name, uint32_t block) {
    return block == kSplitBlock ? std::string(name) : std::string(name) + "_b" + std::to_string(block);
}
constexpr uint32_t kSplitMaxTokens = 8;   // more queries fill the GPU without a split
constexpr uint32_t kSplitMaxHeadDim = 1024;  // qs[] of attention_split.comp

}  // namespace

void VulkanBackend::set_split_attention(uint32_t min_keys) {
    split_attention_min_keys_ = min_keys == 0 ? 0 : std::max(min_keys, kSplitBlock + 1);
}

void VulkanBackend::configure_split_attention_from_environment() {
    set_split_attention(kSplitBlock + 1);  // from two blocks
    if (const char *env = std::getenv("MST_VULKAN_SPLIT_ATTENTION"); env && *env) {
        const std::string v = env;
        uint32_t n = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || end != v.data() + v.size())
            fail(MST_ERR_INVALID_ARGUMENT,
                 "MST_VULKAN_SPLIT_ATTENTION='{}': expected 0 (off) or the positions of context from which to split", v);
        set_split_attention(n);
    }
    if (split_attention_min_keys_ == 0)
        log(MST_LOG_INFO, "vulkan: decode attention not split over positions (MST_VULKAN_SPLIT_ATTENTION=0)");
    split_rows_ = env_switch("MST_VULKAN_SPLIT_ROWS", split_rows_, "attention_split_rows.comp", "attention_split.comp");
    if (const char *env = std::getenv("MST_VULKAN_SPLIT_BLOCK"); env && *env) {
        const std::string v = env;
        if (v != "32" && v != "64" && v != "128")
            fail(MST_ERR_INVALID_ARGUMENT, "MST_VULKAN_SPLIT_BLOCK='{}': expected 32, 64 or 128 keys a block", v);
        set_split_block(uint32_t(std::stoul(v)));
        log(MST_LOG_INFO, "vulkan: attention_split_rows in blocks of {} keys (MST_VULKAN_SPLIT_BLOCK)", split_block_);
    }
    split_gqa_ = env_switch("MST_VULKAN_SPLIT_GQA", split_gqa_,
                            "attention_split_gqa.comp: a workgroup per KV head and block serves the group's heads",
                            "a workgroup per query head and block");
    split_merge_oneshot_ =
        env_switch("MST_VULKAN_SPLIT_MERGE_ONESHOT", split_merge_oneshot_,
                   "the fused split's merge loads every block at once (split_combine_oneshot)",
                   "the fused split's merge fetches (m, l) through shared memory, values in batches");
    attention_combine_fusion_ =
        env_switch("MST_VULKAN_ATTENTION_COMBINE_FUSION", attention_combine_fusion_,
                   "the split's first pass merges the blocks in its last workgroup of each head and query",
                   "the split's first pass and attention_split_combine.comp as two dispatches in two levels");
}

void VulkanBackend::set_split_rows(bool on) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    split_rows_ = on;
}

void VulkanBackend::set_split_block(uint32_t keys) {
    if (keys != 32 && keys != 64 && keys != 128)
        fail(MST_ERR_INVALID_ARGUMENT, "split attention blocks of {} keys: expected 32, 64 or 128", keys);
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    split_block_ = keys;
}

void VulkanBackend::set_split_gqa(bool on) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    split_gqa_ = on;
}

void VulkanBackend::set_split_merge_oneshot(bool on) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    split_merge_oneshot_ = on;
}

void VulkanBackend::set_attention_combine_fusion(bool on) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    attention_combine_fusion_ = on;
}

BufferSlice VulkanBackend::split_counter(uint64_t slots) {
    const uint64_t bytes = std::max<uint64_t>(slots, 4) * sizeof(uint32_t);
    if (!split_counter_ || split_counter_->size() < bytes) {
        // Work recorded in this batch may still use the smaller one.
        if (split_counter_) stream_->release_later(std::move(*split_counter_));
        split_counter_ = std::make_unique<VulkanBuffer>(*ctx_, bytes, MemoryKind::Device);
        // Once per buffer: each (head, query)'s last workgroup sets its count back to 0. The
        // fill writes only the counter, so it may go ahead of the deferred ops.
        const DeferredHold hold(*this, true);
        stream_->fill_zero(whole(*split_counter_));
    }
    return whole(*split_counter_);
}

uint32_t VulkanBackend::split_attention_blocks(const AttentionShape &s) const {
    if (split_attention_min_keys_ == 0 || s.n_tokens > kSplitMaxTokens || s.head_dim > kSplitMaxHeadDim) return 0;
    // The last query sees the most keys (the window, or every position so far).
    const uint32_t n_ctx = s.pos0 + s.n_tokens;
    const uint32_t n_keys = s.window > 0 && s.window < n_ctx ? s.window : n_ctx;
    if (n_keys < split_attention_min_keys_) return 0;  // never one block: the split would only add the combine
    return (n_keys + kSplitBlock - 1) / kSplitBlock;
}

void VulkanBackend::record_split_attention(const AttentionShape &s, uint32_t n_blocks, const BufferSlice &q,
                                           const BufferSlice &k, const BufferSlice &v, const BufferSlice &sinks,
                                           const BufferSlice &out) {
    // A subgroup per key row where the device and the row strides allow it
    // (attention_split_rows.comp), else an invocation per key (attention_split.comp).
    const bool rows = split_rows_ && use_subgroup_ && s.head_dim % 4 == 0 && s.v_dim % 4 == 0 && s.k_head % 4 == 0 &&
                      s.v_head % 4 == 0 && s.k_row % 4 == 0 && s.v_row % 4 == 0;
    // Larger blocks for the rows' first pass (MST_VULKAN_SPLIT_BLOCK): n_blocks counts
    // blocks of kSplitBlock, and ceil(ceil(n / 32) / r) = ceil(n / (32 r)).
    const uint32_t block = rows ? split_block_ : kSplitBlock, ratio = block / kSplitBlock;
    n_blocks = (n_blocks + ratio - 1) / ratio;
    if (n_blocks > 65535) fail(MST_ERR_UNSUPPORTED, "attention: {} blocks of {} positions (at most 65535)", n_blocks,
                               block);
    // For replay (CommandStream::replay) the commands must not change from one decode
    // step to the next: the position is read from memory, and the grid has blocks for a
    // power of two of them, so it changes only when the context doubles. The shaders skip
    // blocks past a query's last key; the combine reads only those it fills.
    if (stream_->replay()) n_blocks = std::min<uint32_t>(std::bit_ceil(n_blocks), 65535);
    const bool fused = attention_combine_fusion_;
    const BufferSlice counter = fused ? split_counter(uint64_t(s.n_tokens) * s.n_heads) : BufferSlice{};
    const BufferSlice partials =
        stream_->device_scratch(uint64_t(s.n_tokens) * s.n_heads * n_blocks * (s.v_dim + 2) * sizeof(float));
    BufferSlice step = stream_->host_scratch(sizeof(uint32_t));
    std::memcpy(step.mapped, &s.pos0, sizeof(uint32_t));
    step = stream_->to_device(step);
    struct {
        uint32_t n_tokens, n_heads, group, head_dim, v_dim, pos0, k_head, v_head, k_row, v_row;
        float scale;
        uint32_t window, has_sinks, n_ctx, n_blocks;
    } push{s.n_tokens, s.n_heads, s.group, s.head_dim, s.v_dim,           0 /* step */, s.k_head, s.v_head,
           s.k_row,    s.v_row,   s.scale, s.window,   s.sinks ? 1u : 0u, 0 /* unused */, n_blocks};
    // A workgroup per (KV head, query, block) for the group's query heads
    // (attention_split_gqa.comp, MST_VULKAN_SPLIT_GQA) where the rows' pass would run in
    // blocks of 32 and the heads fit its shared memory; its grid's x is the KV heads.
    const bool gqa = split_gqa_ && rows && block == kSplitBlock && s.head_dim <= 128 && s.v_dim <= 128 &&
                     s.group >= 1 && s.group <= 8;
    const uint32_t groups_x = gqa ? s.n_heads / s.group : s.n_heads;
    if (rows) ++split_rows_dispatches_;
    if (gqa) ++split_gqa_dispatches_;
    ++split_attention_dispatches_;
    if (fused) {
        const VulkanPipeline &first_pass =
            gqa    ? pipelines_->get("attention_split_gqa_fused", 8, {lanes_, s.group})
            : rows ? pipelines_->get(rows_variant("attention_split_rows_fused", block), 8,
                                     {lanes_, split_merge_oneshot_ ? 1u : 0u})
                   : pipelines_->get(use_subgroup_ ? "attention_split_fused_sg" : "attention_split_fused", 8);
        stream_->dispatch(first_pass, {q, k, v, partials, step, sinks, out, counter}, &push, sizeof push, groups_x,
                          s.n_tokens, n_blocks);
        ++fused_attention_combines_;
        return;
    }
    const VulkanPipeline &first_pass =
        gqa    ? pipelines_->get("attention_split_gqa", 5, {lanes_, s.group})
        : rows ? pipelines_->get(rows_variant("attention_split_rows", block), 5, {lanes_})
               : pipelines_->get(use_subgroup_ ? "attention_split_sg" : "attention_split", 5);
    stream_->dispatch(first_pass, {q, k, v, partials, step}, &push, sizeof push, groups_x, s.n_tokens, n_blocks);
    stream_->dispatch(pipelines_->get("attention_split_combine", 4, {block}), {partials, sinks, out, step}, &push, sizeof push,
                      s.n_heads, s.n_tokens);
}

}  // namespace mst
