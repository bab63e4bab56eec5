// The KV append of a decode token without a level of its own (docs/gpu_decode_kernels.md,
// "The KV append and the router's top-k without levels of their own";
// MST_VULKAN_KV_APPEND_FUSION). With the attention fusion, k's q/k-norm and rope are one
// norm_rope.comp dispatch; for one token it waits in deferred_ (op_fusion.cpp, rope_fused)
// until the attention call. By then KvCache::store has appended k and v to the host caches
// with copy_rows, which (decode fusion) recorded nothing and registered the cache rows as
// the k norm_rope's and the v product's device results. Here the attention finds those
// rows still pending, k's norm_rope still deferred, and records it as norm_rope_kv: the
// same rotated rows to y (delivered to the host caches as before) and to the device KV
// mirror, and the v rows copied beside them, where kv_mirror would have recorded two
// copy_table commands in a level of their own between the rope and the attention. With the
// q/k/v fusion (MST_VULKAN_QKV_FUSION), q's norm_rope of the step, deferred beside k's, goes
// into the same dispatch (norm_rope_qk_kv): one dispatch where the level had two.
#include "backends/vulkan/env_switch.h"
#include "backends/vulkan/vulkan_backend.h"

namespace mst {

void VulkanBackend::configure_kv_append_fusion_from_environment() {
    kv_append_fusion_ = env_switch("MST_VULKAN_KV_APPEND_FUSION", kv_append_fusion_,
                                   "a decode token's k norm_rope writes the KV mirror and copies v beside it",
                                   "the attention copies the new k and v rows into its KV mirror (copy_table)");
}

void VulkanBackend::set_kv_append_fusion(bool on) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    record_deferred_ops();
    kv_append_fusion_ = on;
}

bool VulkanBackend::append_kv_fused(const float *q, const float *k_cache, const float *v_cache,
                                    const AttentionParams &p) {
    if (!kv_append_fusion_ || !stream_->in_batch() || p.n_tokens != 1 || p.cache_id == 0) return false;
    const auto it = kv_.find(p.cache_id);
    // Only the plain append: a mirror that exists, has room, and holds every position
    // before this one (else kv_mirror grows it or fills the gap from the host).
    if (it == kv_.end()) return false;
    KvMirror &m = it->second;
    const int64_t n_ctx = int64_t(p.pos0) + 1;
    if (n_ctx > m.capacity || m.valid < p.pos0) return false;
    // The step's rows in the host caches, as device results: head h's k row must be row h of
    // one result (the norm_rope's y), its v row row h of another (the v product's).
    const uint64_t k_bytes = uint64_t(p.head_dim) * 4, v_bytes = uint64_t(p.v_head_dim) * 4;
    BufferSlice k0, v0;
    for (int64_t h = 0; h < p.n_kv_heads; ++h) {
        BufferSlice ks, vs;
        if (!stream_->pending_slice(k_cache + h * p.kv_stride + int64_t(p.pos0) * p.head_dim, k_bytes, ks) ||
            !stream_->pending_slice(v_cache + h * p.kv_stride + int64_t(p.pos0) * p.v_head_dim, v_bytes, vs))
            return false;
        if (h == 0) {
            k0 = ks;
            v0 = vs;
        } else if (ks.buffer != k0.buffer || ks.offset != k0.offset + uint64_t(h) * k_bytes || vs.buffer != v0.buffer ||
                   vs.offset != v0.offset + uint64_t(h) * v_bytes) {
            return false;
        }
    }
    int found = -1;
    for (size_t j = 0; j < deferred_.size() && found < 0; ++j) {
        const DeferredOp &d = deferred_[j];
        if (d.kind == DeferredOp::Kind::norm_rope && d.y.buffer == k0.buffer && d.y.offset == k0.offset &&
            d.rows == p.n_kv_heads && d.cols == p.head_dim)
            found = int(j);
    }
    if (found < 0) return false;
    KvAppend kv;
    kv.k_mirror = whole(m.k);
    kv.v_mirror = whole(m.v);
    kv.v_rows = BufferSlice{v0.buffer, v0.offset, uint64_t(p.n_kv_heads) * v_bytes, nullptr};
    kv.capacity = uint32_t(m.capacity);
    kv.pos0 = uint32_t(p.pos0);
    kv.v_dim = uint32_t(p.v_head_dim);
    const DeferredOp &op = deferred_[size_t(found)];
    const BufferSlice reads[] = {op.x, op.weight, op.table, kv.v_rows}, writes[] = {op.y, kv.k_mirror, kv.v_mirror};
    // When it may not go ahead of the other deferred work (the v rows a deferred product's),
    // everything is recorded in order and kv_mirror copies the rows as before.
    if (!fuses_ahead(size_t(found), reads, writes)) return false;
    // q's norm_rope of the step in the same dispatch (MST_VULKAN_QKV_FUSION): deferred too,
    // of the same table and norm constants, and free to go ahead of the rest.
    const int qi = qkv_fusion_ ? find_deferred(DeferredOp::Kind::norm_rope, q) : -1;
    DeferredOp q_op{};
    const DeferredOp *with_q = nullptr;
    if (qi >= 0) {
        const DeferredOp &k = deferred_[size_t(found)], &n = deferred_[size_t(qi)];
        const BufferSlice q_reads[] = {n.x, n.weight, n.table}, q_writes[] = {n.y};
        if (n.rows == p.n_heads && n.cols == k.cols && n.table.buffer == k.table.buffer &&
            n.table.offset == k.table.offset && n.eps == k.eps && n.offset == k.offset && n.half_dim == k.half_dim &&
            n.interleaved == k.interleaved && commutes(size_t(qi), size_t(found), q_reads, q_writes)) {
            q_op = n;
            with_q = &q_op;
            deferred_.erase(deferred_.begin() + qi);
            if (qi < found) --found;
        }
    }
    record_fused(size_t(found), [&](const DeferredOp &d) { record_norm_rope(d, &kv, with_q); });
    m.last_use = ++kv_clock_;
    m.valid = n_ctx;
    return true;
}

}  // namespace mst
