// The attention fusions (docs/gpu_decode_kernels.md, "The attention half in fewer levels";
// MST_VULKAN_ATTENTION_FUSION): a peephole in the command stream, so that the Backend ops
// and the model code stay as they are. Inside a batch, rms_norm (rows norm_vec4.comp
// takes) and one token's products (matvec.comp) record nothing when called: their inputs
// are resolved and their results registered at once, the command itself waits in
// deferred_. The op that reads the result next may fold it into its own dispatch:
//   - a one-token product of the normed x (q, k and v; the router; not the head, past
//     kNormProductRows): the norm inside the product (shaders/matvec_fused.comp,
//     matvec_norm_*), which also writes the normalised x;
//   - rope of the normed head rows (q-norm, k-norm): one norm_rope.comp dispatch;
//   - the residual add of a product (o): the add in the product's epilogue (matvec_add_*);
//   - one token's norm_rope, deferred in turn: the attention's KV append into it
//     (op_kv_append.cpp, MST_VULKAN_KV_APPEND_FUSION);
//   - three one-token products of the normed x (q, k and v) of one type: one dispatch for
//     the three, their norm inside (matvec_norm_qkv_*, MST_VULKAN_QKV_FUSION);
//   - one token's norm product of up to kTopkProductRows rows, deferred in turn: the
//     softmax_topk of its result into it (op_routing.cpp, MST_VULKAN_ROUTER_TOPK_FUSION).
// Anything else first records the deferred commands as they were (the stream calls
// record_deferred_ops before any other command, kick or wait), so every other sequence of
// ops records what it did before. The fused kernels compute what the unfused commands do,
// bit for bit (the same sums in the same order: matvec_fused.comp says how).
#include <algorithm>
#include <cstring>
#include <string>

#include "backends/vulkan/env_switch.h"
#include "backends/vulkan/vulkan_backend.h"
#include "core/log.h"

namespace mst {
namespace {

bool overlaps(const BufferSlice &a, const BufferSlice &b) {
    return a.buffer == b.buffer && a.offset < b.offset + std::max<VkDeviceSize>(b.size, 1) &&
           b.offset < a.offset + std::max<VkDeviceSize>(a.size, 1);
}

}  // namespace

void VulkanBackend::configure_attention_fusion_from_environment() {
    attention_fusion_ = env_switch("MST_VULKAN_ATTENTION_FUSION", attention_fusion_,
                                   "norms folded into the products and rope that read them, the residual add into "
                                   "the product before it",
                                   "a command per norm, rope, product and add");
    stream_->set_deferred([this] { record_deferred_ops(); });
}

void VulkanBackend::configure_qkv_fusion_from_environment() {
    qkv_fusion_ = env_switch("MST_VULKAN_QKV_FUSION", qkv_fusion_,
                             "q, k and v of one normed x as one dispatch, q's norm_rope in k's norm_rope_kv",
                             "a dispatch per product and per norm_rope");
    if (!qkv_fusion_)
        log(MST_LOG_INFO,
            "vulkan: q, k and v, and q's and k's norm_ropes, take a dispatch each (MST_VULKAN_QKV_FUSION=0)");
}

void VulkanBackend::set_qkv_fusion(bool on) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    record_deferred_ops();
    qkv_fusion_ = on;
}

void VulkanBackend::set_attention_fusion(bool on) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    record_deferred_ops();
    attention_fusion_ = on;
}

void VulkanBackend::record_deferred_ops() {
    if (deferred_held_ || deferred_.empty()) return;
    // Taken out first: recording them re-enters here through the stream's hook.
    std::vector<DeferredOp> ops;
    ops.swap(deferred_);
    for (const DeferredOp &op : ops) record_deferred_op(op);
}

void VulkanBackend::record_deferred_op(const DeferredOp &op) {
    if (op.kind == DeferredOp::Kind::norm_rope) {
        record_norm_rope(op, nullptr, nullptr);
        return;
    }
    if (op.kind == DeferredOp::Kind::norm_matvec) {
        WeightView w;
        w.dtype = op.dtype;
        w.rows = op.rows;
        w.cols = op.cols;
        record_norm_product(w, op.matrix, op, op.product, true);
        return;
    }
    if (op.kind == DeferredOp::Kind::norm) {
        record_norm(0, op.x, op.weight, unused_binding(), op.y, op.offset, op.eps, op.rows, op.cols);
        return;
    }
    WeightView w;
    w.dtype = op.dtype;
    w.rows = op.rows;
    w.cols = op.cols;
    const DeviceWeight dw{op.weight, {}};
    if (!record_matvec(w, dw, op.x, op.y, 1)) record_matmul(w, dw, op.x, op.y, 1);
}

int VulkanBackend::find_deferred(DeferredOp::Kind kind, const float *result) const {
    for (size_t i = deferred_.size(); i-- > 0;)
        if (deferred_[i].kind == kind && deferred_[i].result == result) return int(i);
    return -1;
}

bool VulkanBackend::commutes(size_t i, size_t also, std::span<const BufferSlice> reads,
                             std::span<const BufferSlice> writes) const {
    for (size_t j = 0; j < deferred_.size(); ++j) {
        if (j == i || j == also) continue;
        const DeferredOp &d = deferred_[j];
        bool clash = false;
        for (const BufferSlice &w : writes)
            clash = clash || overlaps(w, d.x) || overlaps(w, d.weight) || overlaps(w, d.y) || overlaps(w, d.table) ||
                    overlaps(w, d.matrix) || overlaps(w, d.product);
        for (const BufferSlice &r : reads) clash = clash || overlaps(r, d.y) || overlaps(r, d.product);
        if (clash) return false;
    }
    return true;
}

bool VulkanBackend::fuses_ahead(size_t i, std::span<const BufferSlice> reads, std::span<const BufferSlice> writes) {
    // The fused command goes ahead of the other deferred ops (a k-norm waiting for its
    // rope while q's runs) only where the order cannot matter.
    if (commutes(i, i, reads, writes)) return true;
    record_deferred_ops();  // in call order, op i with them: the consumer reads its result
    return false;
}

void VulkanBackend::record_fused(size_t i, const std::function<void(const DeferredOp &)> &record) {
    const DeferredOp op = deferred_[i];
    deferred_.erase(deferred_.begin() + std::ptrdiff_t(i));
    const DeferredHold hold(*this, true);
    record(op);
}

void VulkanBackend::record_deferred_results_in(const void *ptr, size_t bytes) {
    const auto *lo = static_cast<const uint8_t *>(ptr);
    for (const DeferredOp &d : deferred_) {
        const auto *r = reinterpret_cast<const uint8_t *>(d.result);
        const bool product = d.kind == DeferredOp::Kind::matvec || d.kind == DeferredOp::Kind::norm_matvec;
        const size_t n = size_t(product ? d.rows : d.rows * d.cols) * sizeof(float);
        // A norm_matvec writes the norm's result too.
        const auto *h = reinterpret_cast<const uint8_t *>(d.norm_result);
        const size_t hn = size_t(d.cols) * sizeof(float);
        if ((r < lo + bytes && lo < r + n) || (h && h < lo + bytes && lo < h + hn)) {
            record_deferred_ops();
            return;
        }
    }
}

bool VulkanBackend::defer_norm(const float *x, const WeightView &w, float offset, float eps, float *y, int64_t n_rows,
                               int64_t dim) {
    if (!attention_fusion_ || !stream_->in_batch() || !use_norm_vec4_ || dim % 4 != 0 || dim > 4096) return false;
    const uint64_t bytes = uint64_t(n_rows * dim) * sizeof(float);
    DeferredOp op{DeferredOp::Kind::norm, y, {}, {}, {}};
    op.x = stream_->input(x, bytes);
    op.weight = residency_->get(*stream_, w, true).data;
    op.y = stream_->output_buffer(bytes);
    op.rows = n_rows;
    op.cols = dim;
    op.offset = offset;
    op.eps = eps;
    stream_->output(op.y, y, bytes);
    deferred_.push_back(op);
    return true;
}

bool VulkanBackend::norm_product_fits(const WeightView &w) const {
    const uint32_t threads = matvec_tuning_.dense.threads();
    // Every workgroup re-reads x for its sum of squares: for q (4096 rows, 1024 workgroups
    // on the H100: 8 MB from cache beside 16 MB of weights) that costs less than a dispatch
    // and its barrier; for the head (152k rows, 38k workgroups: 311 MB) it would not, so
    // products that long keep the norm's own dispatch.
    return use_matvec_ && use_norm_vec4_ && w.cols % 4 == 0 && w.cols <= 4096 && w.rows <= kNormProductRows &&
           threads <= 256 && 256 % threads == 0;
}

const VulkanPipeline &VulkanBackend::fused_matvec_pipeline(const char *kind, DType t) {
    const std::string k = kind;
    const size_t which = k == "norm" ? 0 : k == "add" ? 1 : k == "norm_topk" ? 2 : 3;
    const VulkanPipeline *&cached = fused_matvec_pipelines_[which][size_t(t)];
    if (!cached) {
        // "matvec_bf16" -> "matvec_norm_bf16" (the type's name after "matvec_").
        const std::string name = "matvec_" + k + "_" + (matvec_shader(t, 32) + 7);
        const uint32_t n_bindings[] = {5, 5, 8, 9};
        cached = &matvec_family_pipeline(name, n_bindings[which], matvec_tuning_.dense);
    }
    return *cached;
}

// y = W rms_norm(x) for the deferred norm n of one row; with write_h, its result too.
void VulkanBackend::record_norm_product(const WeightView &w, const BufferSlice &weight, const DeferredOp &n,
                                        const BufferSlice &y, bool write_h) {
    struct {
        uint32_t rows, cols;
        float eps, offset;
        uint32_t write_h;
    } push{uint32_t(w.rows), uint32_t(w.cols), n.eps, n.offset, write_h ? 1u : 0u};
    // A product that does not write h binds a slice of its own there: the products of one
    // x must not seem to write the same bytes (that would order them one after another).
    const BufferSlice h = write_h ? n.y : stream_->device_scratch(16);
    const uint32_t gx = uint32_t(dense_groups(w.rows));
    stream_->dispatch(fused_matvec_pipeline("norm", w.dtype), {weight, n.x, y, n.weight, h}, &push, sizeof push, gx);
    ++fused_norm_products_;
}

// The workgroups of q's, k's and v's grids one after another (matvec_norm_qkv's x).
uint64_t VulkanBackend::qkv_workgroups(std::span<const WeightView> w) const {
    uint64_t groups = 0;
    for (const WeightView &p : w) groups += dense_groups(p.rows);
    return groups;
}

bool VulkanBackend::qkv_fits(std::span<const WeightView> w) const {
    // One type, so one unit product per workgroup; the grid within one dimension (the
    // shader numbers workgroups by x alone). matmuls_one_input checked the width and the rest.
    return qkv_fusion_ && w.size() == 3 && w[1].dtype == w[0].dtype && w[2].dtype == w[0].dtype &&
           qkv_workgroups(w) <= 65535;
}

// q, k and v of the deferred norm n of one row (y = W rms_norm(x) each, the first writing
// n's result) as one matvec_norm_qkv dispatch: q's workgroups, then k's, then v's.
void VulkanBackend::record_norm_qkv(std::span<const WeightView> w, const DeviceWeight *dw, const DeferredOp &n,
                                    const BufferSlice *ys) {
    struct {
        uint32_t rows, cols;
        float eps, offset;
        uint32_t write_h, k_rows, v_rows;
    } push{uint32_t(w[0].rows), uint32_t(w[0].cols), n.eps, n.offset, 1u, uint32_t(w[1].rows), uint32_t(w[2].rows)};
    const uint32_t gx = uint32_t(qkv_workgroups(w));  // qkv_fits kept it within 65535
    stream_->dispatch(fused_matvec_pipeline("norm_qkv", w[0].dtype),
                      {dw[0].data, n.x, ys[0], n.weight, n.y, dw[1].data, dw[2].data, ys[1], ys[2]}, &push, sizeof push,
                      gx);
    fused_norm_products_ += 3;
    ++fused_qkv_products_;
}

// Whether one token's product of w takes matvec.comp (and so its fused forms).
bool VulkanBackend::matvec_fits(const WeightView &w) const {
    return use_matvec_ && matvec_shader(w.dtype, w.cols) != nullptr &&
           dense_groups(w.rows) <= 65535;
}

bool VulkanBackend::matmul_fused(const WeightView &w, const float *x, float *y) {
    if (!attention_fusion_ || !stream_->in_batch() || !matvec_fits(w)) return false;
    // First, as it may record a copy (the weight's first use) and with it the deferred ops.
    const DeviceWeight dw = residency_->get(*stream_, w);
    const BufferSlice ys = stream_->output_buffer(uint64_t(w.rows) * sizeof(float));
    const int i = find_deferred(DeferredOp::Kind::norm, x);
    bool fused = false;
    if (i >= 0 && deferred_[size_t(i)].rows == 1 && deferred_[size_t(i)].cols == w.cols && norm_product_fits(w)) {
        const DeferredOp &n = deferred_[size_t(i)];
        const BufferSlice reads[] = {dw.data, n.x, n.weight}, writes[] = {ys, n.y};
        fused = fuses_ahead(size_t(i), reads, writes);
        if (fused && router_topk_fusion_ && w.rows <= kTopkProductRows) {
            // Deferred in turn, in the norm's place (it commutes with the rest): a
            // softmax_topk of its result records both in one dispatch (op_routing.cpp).
            DeferredOp &op = deferred_[size_t(i)];
            op.kind = DeferredOp::Kind::norm_matvec;
            op.norm_result = op.result;
            op.result = y;
            op.matrix = dw.data;
            op.product = ys;
            op.rows = w.rows;
            op.cols = w.cols;
            op.dtype = w.dtype;
        } else if (fused) {
            record_fused(size_t(i), [&](const DeferredOp &op) { record_norm_product(w, dw.data, op, ys, true); });
        }
    }
    if (!fused) {
        // Its weights warmed in the level open now (the attention's, for o), unless x is a
        // norm's result still deferred: the head, or a product whose norm did not fit.
        if ((l2_warm_ & kWarmO) && i < 0) {
            const BufferSlice warm[] = {dw.data};
            record_l2_warm(warm);
        }
        // Deferred itself: the residual add after it may take it into its epilogue.
        DeferredOp op{DeferredOp::Kind::matvec, y, {}, {}, {}};
        op.x = stream_->input(x, uint64_t(w.cols) * sizeof(float));
        op.weight = dw.data;
        op.y = ys;
        op.rows = w.rows;
        op.cols = w.cols;
        op.dtype = w.dtype;
        deferred_.push_back(op);
    }
    stream_->output(ys, y, ys.size);
    return true;
}

void VulkanBackend::matmuls_one_input(std::span<const WeightView> w, std::span<float *const> y, const float *x,
                                      int64_t n_tokens) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    // q, k and v of one normed x: the norm in each product, the first writing its result.
    constexpr size_t kMost = 8;
    bool fits = n_tokens == 1 && attention_fusion_ && stream_->in_batch() && !w.empty() && w.size() <= kMost &&
                w.size() == y.size() && find_deferred(DeferredOp::Kind::norm, x) >= 0;
    for (size_t k = 0; fits && k < w.size(); ++k) {
        check_matmul_params(w[k], x, y[k], n_tokens);
        fits = matvec_fits(w[k]) && w[0].cols == w[k].cols && norm_product_fits(w[k]);
    }
    DeviceWeight dw[kMost];
    for (size_t k = 0; fits && k < w.size(); ++k) dw[k] = residency_->get(*stream_, w[k]);
    // Looked up again: a weight's first copy records the deferred ops.
    const int i = fits ? find_deferred(DeferredOp::Kind::norm, x) : -1;
    if (i < 0 || deferred_[size_t(i)].rows != 1 || deferred_[size_t(i)].cols != w[0].cols) {
        Backend::matmuls_one_input(w, y, x, n_tokens);
        return;
    }
    const DeferredOp &n = deferred_[size_t(i)];
    BufferSlice ys[kMost], reads[kMost + 2], writes[kMost + 1];
    for (size_t k = 0; k < w.size(); ++k) {
        ys[k] = stream_->output_buffer(uint64_t(w[k].rows) * sizeof(float));
        reads[k] = dw[k].data;
        writes[k] = ys[k];
    }
    reads[w.size()] = n.x;
    reads[w.size() + 1] = n.weight;
    writes[w.size()] = n.y;
    if (!fuses_ahead(size_t(i), {reads, w.size() + 2}, {writes, w.size() + 1})) {
        Backend::matmuls_one_input(w, y, x, n_tokens);
        return;
    }
    learn_after_layer({dw, w.size()});
    record_fused(size_t(i), [&](const DeferredOp &op) {
        if (qkv_fits(w)) {
            record_norm_qkv(w, dw, op, ys);
            return;
        }
        for (size_t k = 0; k < w.size(); ++k) record_norm_product(w[k], dw[k].data, op, ys[k], k == 0);
    });
    for (size_t k = 0; k < w.size(); ++k) stream_->output(ys[k], y[k], ys[k].size);
}

bool VulkanBackend::add_fused(float *x, const BufferSlice &xs, const float *y, int64_t n) {
    if (!attention_fusion_ || !stream_->in_batch() || x == y) return false;
    const int i = find_deferred(DeferredOp::Kind::matvec, y);
    if (i < 0 || deferred_[size_t(i)].rows != n) return false;
    const BufferSlice out = stream_->output_buffer(uint64_t(n) * sizeof(float));
    const DeferredOp &m = deferred_[size_t(i)];
    const BufferSlice reads[] = {m.weight, m.x, xs}, writes[] = {m.y, out};
    if (!fuses_ahead(size_t(i), reads, writes)) return false;
    record_fused(size_t(i), [&](const DeferredOp &op) {
        const uint32_t push[2] = {uint32_t(op.rows), uint32_t(op.cols)};
        const uint32_t gx = uint32_t(dense_groups(op.rows));
        stream_->dispatch(fused_matvec_pipeline("add", op.dtype), {op.weight, op.x, op.y, xs, out}, push, sizeof push,
                          gx);
        ++fused_residual_products_;
    });
    stream_->output(out, x, out.size);
    return true;
}

bool VulkanBackend::rope_fused(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const BufferSlice &table,
                               const RopeParams &p) {
    if (!attention_fusion_ || !stream_->in_batch() || head_dim > 1024) return false;  // norm_rope.comp's MAX_DIM
    const int i = find_deferred(DeferredOp::Kind::norm, x);
    if (i < 0 || deferred_[size_t(i)].rows != n_tokens * n_heads || deferred_[size_t(i)].cols != head_dim) return false;
    {
        const DeferredOp &n = deferred_[size_t(i)];
        const BufferSlice reads[] = {n.x, n.weight, table}, writes[] = {n.y};
        if (!fuses_ahead(size_t(i), reads, writes)) return false;
    }
    // The norm's result, registered at x, is now the rotated row.
    DeferredOp &n = deferred_[size_t(i)];
    n.table = table;
    n.n_heads = uint32_t(n_heads);
    n.half_dim = uint32_t(p.rotary_dim / 2);
    n.interleaved = p.interleaved ? 1u : 0u;
    if (kv_append_fusion_ && n_tokens == 1) {
        // Deferred in turn, in the norm's place (it commutes with the other deferred ops,
        // as fuses_ahead found): if these are a decode token's k rows, the attention's KV
        // append takes them (op_kv_append.cpp); any other command records them first.
        n.kind = DeferredOp::Kind::norm_rope;
        return true;
    }
    record_fused(size_t(i), [&](const DeferredOp &op) { record_norm_rope(op, nullptr, nullptr); });
    return true;
}

void VulkanBackend::record_norm_rope(const DeferredOp &op, const KvAppend *kv, const DeferredOp *q) {
    struct {
        uint32_t dim, n_heads, half_dim, interleaved;
        float eps, offset;
        uint32_t capacity, v_dim;  // the _kv variants only
        uint32_t q_heads;          // the _qk_kv variants only
    } push{uint32_t(op.cols), op.n_heads, op.half_dim, op.interleaved, op.eps, op.offset,
           kv ? kv->capacity : 0u, kv ? kv->v_dim : 0u, q ? uint32_t(q->rows) : 0u};
    uint32_t gx, gy;
    groups_for(op.rows + (q ? q->rows : 0), 1, gx, gy);
    if (kv) {
        // The position from host memory (one word per workgroup, as copy_many's table):
        // the command stays the same from one step to the next, for replay.
        const BufferSlice step = stream_->host_scratch(sizeof(uint32_t));
        std::memcpy(step.mapped, &kv->pos0, sizeof(uint32_t));
        if (q) {
            stream_->dispatch(pipelines_->get(use_subgroup_ ? "norm_rope_qk_kv_sg" : "norm_rope_qk_kv", 11),
                              {op.x, op.weight, op.table, op.y, kv->k_mirror, kv->v_rows, kv->v_mirror, step, q->x,
                               q->weight, q->y},
                              &push, sizeof push, gx, gy);
            ++fused_norm_ropes_;  // q's, beside k's below
            ++fused_qk_norm_ropes_;
        } else {
            stream_->dispatch(pipelines_->get(use_subgroup_ ? "norm_rope_kv_sg" : "norm_rope_kv", 8),
                              {op.x, op.weight, op.table, op.y, kv->k_mirror, kv->v_rows, kv->v_mirror, step}, &push,
                              sizeof push, gx, gy);
        }
        ++fused_kv_appends_;
    } else {
        stream_->dispatch(pipelines_->get(use_subgroup_ ? "norm_rope_sg" : "norm_rope", 4),
                          {op.x, op.weight, op.table, op.y}, &push, 6 * sizeof(uint32_t), gx, gy);
    }
    ++fused_norm_ropes_;
}

}  // namespace mst
