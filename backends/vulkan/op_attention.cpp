// Attention (GQA with windows and sinks) and latent attention (MLA), both through
// shaders/attention.comp. Caches that promise append-only use (cache_id) are mirrored in
// device memory and only their new positions sent; others are sent whole at every call.
#include <algorithm>
#include <bit>
#include <cstring>

#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"

namespace mst {

void VulkanBackend::record_attention(const AttentionShape &s, const BufferSlice &q, const BufferSlice &k,
                                     const BufferSlice &v, const BufferSlice &sinks, const BufferSlice &out) {
    if (s.head_dim > 1024) fail(MST_ERR_UNSUPPORTED, "attention: head size {} above 1024", s.head_dim);
    if (s.n_tokens > 65535) fail(MST_ERR_UNSUPPORTED, "attention: {} queries in one call (at most 65535)", s.n_tokens);
    // A decode step against a long context takes the split kernels (op_attention_split.cpp).
    if (const uint32_t blocks = split_attention_blocks(s)) return record_split_attention(s, blocks, q, k, v, sinks, out);
    // A prefill the cooperative-matrix kernel covers takes it (op_attention_flash.cpp).
    if (const uint32_t queries = flash_attention_queries(s)) return record_flash_attention(s, queries, q, k, v, sinks, out);
    const uint32_t n_ctx = s.pos0 + s.n_tokens;
    // A prefill takes the blocked kernel (op_attention_prefill.cpp), which keeps its scores
    // in shared memory: the output stands in for the scratch binding.
    const uint32_t query_blocks = blocked_attention_query_blocks(s);
    const BufferSlice scores = query_blocks ? out : stream_->device_scratch(uint64_t(s.n_tokens) * s.n_heads * n_ctx * sizeof(float));
    struct {
        uint32_t n_tokens, n_heads, group, head_dim, v_dim, pos0, k_head, v_head, k_row, v_row;
        float scale;
        uint32_t window, has_sinks, n_ctx;
    } push{s.n_tokens, s.n_heads, s.group, s.head_dim, s.v_dim, s.pos0, s.k_head, s.v_head, s.k_row, s.v_row,
           s.scale, s.window, s.sinks ? 1u : 0u, n_ctx};
    const VulkanPipeline &pipeline = query_blocks ? pipelines_->get("attention_blocked", 6, {blocked_attention_keys_per_block()})
                                                  : pipelines_->get("attention", 6);
    stream_->dispatch(pipeline, {q, k, v, out, scores, sinks},
                      &push, sizeof push, s.n_heads, query_blocks ? query_blocks : s.n_tokens);
    if (query_blocks) ++blocked_attention_dispatches_;
}

VulkanBackend::KvMirror &VulkanBackend::kv_mirror(const float *k_cache, const float *v_cache, const AttentionParams &p) {
    const int64_t n_ctx = int64_t(p.pos0) + p.n_tokens;
    KvMirror &m = kv_[p.cache_id];
    m.last_use = ++kv_clock_;
    // Grow, making room under the budget first. The positions the old copy holds move over
    // on the device; only the new ones come from the host caches (were they read from there,
    // the step's own rows, still pending, would make the batch run and wait first: at a
    // 512-token prompt that was 48 waits in the first decode token). The old copy may still
    // be read by work recorded in this batch, and is released after it.
    std::vector<std::pair<BufferSlice, BufferSlice>> moved_k, moved_v;
    if (n_ctx > m.capacity) {
        const BufferSlice old_k = whole(m.k), old_v = whole(m.v);
        const int64_t old_capacity = m.capacity, old_valid = m.valid;  // 0 where there was none
        kv_bytes_ -= m.bytes;
        stream_->release_later(std::move(m.k));
        stream_->release_later(std::move(m.v));
        m = KvMirror{};
        m.last_use = kv_clock_;
        // bit_ceil, not 1 << (64 - clz(n_ctx - 1)): clz(0) at n_ctx = 1 is undefined (UBSan).
        m.capacity = std::max<int64_t>(256, int64_t(std::bit_ceil(uint64_t(n_ctx))));
        m.bytes = uint64_t(p.n_kv_heads) * uint64_t(m.capacity) * uint64_t(p.head_dim + p.v_head_dim) * sizeof(float);
        while (kv_bytes_ + m.bytes > kv_budget_) {
            auto oldest = kv_.end();
            for (auto it = kv_.begin(); it != kv_.end(); ++it)
                if (it->first != p.cache_id && (oldest == kv_.end() || it->second.last_use < oldest->second.last_use))
                    oldest = it;
            if (oldest == kv_.end()) break;
            kv_bytes_ -= oldest->second.bytes;
            stream_->release_later(std::move(oldest->second.k));
            stream_->release_later(std::move(oldest->second.v));
            kv_.erase(oldest);
        }
        KvMirror &fresh = kv_[p.cache_id];
        fresh.k = VulkanBuffer(*ctx_, uint64_t(p.n_kv_heads) * uint64_t(m.capacity) * uint64_t(p.head_dim) * sizeof(float),
                               MemoryKind::Device);
        fresh.v = VulkanBuffer(*ctx_, uint64_t(p.n_kv_heads) * uint64_t(m.capacity) * uint64_t(p.v_head_dim) * sizeof(float),
                               MemoryKind::Device);
        kv_bytes_ += m.bytes;
        fresh.valid = old_valid;
        for (int64_t h = 0; h < p.n_kv_heads && old_valid > 0; ++h) {
            const uint64_t k_row = uint64_t(p.head_dim) * 4, v_row = uint64_t(p.v_head_dim) * 4;
            moved_k.push_back({BufferSlice{old_k.buffer, uint64_t(h * old_capacity) * k_row, uint64_t(old_valid) * k_row, nullptr},
                               BufferSlice{fresh.k.buffer(), uint64_t(h * fresh.capacity) * k_row, uint64_t(old_valid) * k_row, nullptr}});
            moved_v.push_back({BufferSlice{old_v.buffer, uint64_t(h * old_capacity) * v_row, uint64_t(old_valid) * v_row, nullptr},
                               BufferSlice{fresh.v.buffer(), uint64_t(h * fresh.capacity) * v_row, uint64_t(old_valid) * v_row, nullptr}});
        }
    }
    KvMirror &mirror = kv_[p.cache_id];
    // Positions from pos0 on are new; any before it that this copy has not seen too.
    const int64_t lo = std::min<int64_t>(mirror.valid, p.pos0);
    std::vector<CommandStream::Piece> kp, vp;
    // A piece that an op of this batch writes (Backend::copy_rows: the step's KV append)
    // is copied from that op's device result, all such pieces in one go; the rest comes
    // from host memory.
    std::vector<std::pair<BufferSlice, BufferSlice>> device_pieces;
    auto add_piece = [&](std::vector<CommandStream::Piece> &pieces, const VulkanBuffer &to, const float *from,
                         uint64_t dst_offset, uint64_t bytes) {
        if (!stream_->pending(from, bytes)) {
            pieces.push_back({from, dst_offset, bytes});
            return;
        }
        const BufferSlice src = stream_->input(from, bytes);
        device_pieces.push_back({BufferSlice{src.buffer, src.offset, bytes, nullptr},
                                 BufferSlice{to.buffer(), dst_offset, bytes, nullptr}});
    };
    for (int64_t h = 0; h < p.n_kv_heads; ++h) {
        add_piece(kp, mirror.k, k_cache + h * p.kv_stride + lo * p.head_dim,
                  uint64_t((h * mirror.capacity + lo) * p.head_dim) * 4, uint64_t((n_ctx - lo) * p.head_dim) * 4);
        add_piece(vp, mirror.v, v_cache + h * p.kv_stride + lo * p.v_head_dim,
                  uint64_t((h * mirror.capacity + lo) * p.v_head_dim) * 4, uint64_t((n_ctx - lo) * p.v_head_dim) * 4);
    }
    // The whole cache copy is bound, so that the next position's append is the same
    // command (replay) with another copy table.
    const BufferSlice whole_k = whole(mirror.k), whole_v = whole(mirror.v);
    if (!moved_k.empty()) {
        stream_->copy_many(moved_k, &whole_k);
        stream_->copy_many(moved_v, &whole_v);
    }
    std::vector<std::pair<BufferSlice, BufferSlice>> to_k, to_v;
    for (const auto &piece : device_pieces) (piece.second.buffer == whole_k.buffer ? to_k : to_v).push_back(piece);
    stream_->copy_many(to_k, &whole_k);
    stream_->copy_many(to_v, &whole_v);
    stream_->upload_pieces(kp, whole(mirror.k));
    stream_->upload_pieces(vp, whole(mirror.v));
    mirror.valid = n_ctx;
    return mirror;
}

void VulkanBackend::attention(const float *q, const float *k_cache, const float *v_cache, float *out,
                              const AttentionParams &p) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_attention_params(q, k_cache, v_cache, out, p);
    if (p.n_tokens == 0) return;
    const int64_t n_ctx = int64_t(p.pos0) + p.n_tokens;
    // A decode token's KV append folded into k's norm_rope (op_kv_append.cpp), before any
    // command here records the deferred ops.
    const bool appended = append_kv_fused(q, k_cache, v_cache, p);

    const BufferSlice qs = stream_->input(q, uint64_t(p.n_tokens) * p.n_heads * p.head_dim * sizeof(float));
    const BufferSlice os = stream_->output_buffer(uint64_t(p.n_tokens) * p.n_heads * p.v_head_dim * sizeof(float));
    const BufferSlice sinks = p.sinks ? stream_->input(p.sinks, uint64_t(p.n_heads) * sizeof(float)) : unused_binding();
    BufferSlice ks, vs;
    int64_t capacity = n_ctx;
    if (p.cache_id != 0) {
        KvMirror &m = appended ? kv_.at(p.cache_id) : kv_mirror(k_cache, v_cache, p);
        ks = whole(m.k);
        vs = whole(m.v);
        capacity = m.capacity;
    } else {
        // The caches are read on the host into scratch: pending writes first.
        const uint64_t span = uint64_t((p.n_kv_heads - 1) * p.kv_stride + n_ctx * std::max(p.head_dim, p.v_head_dim)) * 4;
        stream_->host_access(k_cache, span);
        stream_->host_access(v_cache, span);
        ks = stream_->host_scratch(uint64_t(p.n_kv_heads * n_ctx * p.head_dim) * sizeof(float));
        vs = stream_->host_scratch(uint64_t(p.n_kv_heads * n_ctx * p.v_head_dim) * sizeof(float));
        for (int64_t h = 0; h < p.n_kv_heads; ++h) {
            std::memcpy(ks.mapped + h * n_ctx * p.head_dim * 4, k_cache + h * p.kv_stride, size_t(n_ctx * p.head_dim) * 4);
            std::memcpy(vs.mapped + h * n_ctx * p.v_head_dim * 4, v_cache + h * p.kv_stride,
                        size_t(n_ctx * p.v_head_dim) * 4);
        }
        ks = stream_->to_device(ks);
        vs = stream_->to_device(vs);
    }
    AttentionShape s{uint32_t(p.n_tokens), uint32_t(p.n_heads), uint32_t(p.n_heads / p.n_kv_heads),
                     uint32_t(p.head_dim), uint32_t(p.v_head_dim), uint32_t(p.pos0),
                     uint32_t(capacity * p.head_dim), uint32_t(capacity * p.v_head_dim), uint32_t(p.head_dim),
                     uint32_t(p.v_head_dim), p.scale, uint32_t(p.sliding_window), p.sinks != nullptr};
    record_attention(s, qs, ks, vs, sinks, os);
    stream_->output(os, out, os.size);
    submit();
}

void VulkanBackend::latent_attention(const float *q, const float *cache, float *out, const LatentAttentionParams &p) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_latent_attention_params(q, cache, out, p);
    if (p.n_tokens == 0) return;
    const int64_t row = int64_t(p.latent_dim) + p.rope_dim, n_ctx = int64_t(p.pos0) + p.n_tokens;
    const BufferSlice qs = stream_->input(q, uint64_t(p.n_tokens) * p.n_heads * row * sizeof(float));
    const BufferSlice cs = stream_->input(cache, uint64_t(n_ctx * row) * sizeof(float));
    const BufferSlice os = stream_->output_buffer(uint64_t(p.n_tokens) * p.n_heads * p.latent_dim * sizeof(float));
    AttentionShape s{uint32_t(p.n_tokens), uint32_t(p.n_heads), uint32_t(p.n_heads), uint32_t(row),
                     uint32_t(p.latent_dim), uint32_t(p.pos0), 0, 0, uint32_t(row), uint32_t(row), p.scale, 0, false};
    record_attention(s, qs, cs, cs, unused_binding(), os);
    stream_->output(os, out, os.size);
    submit();
}

}  // namespace mst
