// Row normalisations (shaders/norm.comp) and rotary embedding (shaders/rope.comp).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backends/vulkan/vulkan_backend.h"

namespace mst {

void VulkanBackend::norm(int mode, const float *x, const float *gate, const WeightView *w, float offset, float eps,
                         float *y, int64_t n_rows, int64_t dim) {
    const uint64_t bytes = uint64_t(n_rows * dim) * sizeof(float);
    const BufferSlice xs = stream_->input(x, bytes);
    const BufferSlice ws = w ? residency_->get(*stream_, *w, true).data : unused_binding();
    const BufferSlice gs = gate ? stream_->input(gate, bytes) : unused_binding();
    const BufferSlice ys = stream_->output_buffer(bytes);
    record_norm(mode, xs, ws, gs, ys, offset, eps, n_rows, dim);
    stream_->output(ys, y, bytes);
    submit();
}

void VulkanBackend::record_norm(int mode, const BufferSlice &xs, const BufferSlice &ws, const BufferSlice &gs,
                                const BufferSlice &ys, float offset, float eps, int64_t n_rows, int64_t dim) {
    struct {
        uint32_t dim, mode;
        float eps, offset;
    } push{uint32_t(dim), uint32_t(mode), eps, offset};
    uint32_t gx, gy;
    groups_for(n_rows, 1, gx, gy);
    // Rows of whole vec4s up to 4096 wide take norm_vec4.comp (each invocation's loads
    // issued at once); norm.comp the others. The weight is f32 on the device (get(..., true)).
    const bool vec4_rows = use_norm_vec4_ && dim % 4 == 0 && dim <= 4096;
    const char *shader = !vec4_rows ? "norm" : use_subgroup_ ? "norm_vec4_sg" : "norm_vec4";
    stream_->dispatch(pipelines_->get(shader, 4), {xs, ws, gs, ys}, &push, sizeof push, gx, gy);
    if (vec4_rows) ++norm_vec4_dispatches_;
}

void VulkanBackend::rms_norm(const float *x, const WeightView &w, float weight_offset, float eps, float *y,
                             int64_t n_rows, int64_t dim) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_rms_norm_params(x, w, y, n_rows, dim);
    if (n_rows == 0) return;
    if (defer_norm(x, w, weight_offset, eps, y, n_rows, dim)) return;  // op_fusion.cpp
    norm(0, x, nullptr, &w, weight_offset, eps, y, n_rows, dim);
}

void VulkanBackend::rms_norm_gated(const float *x, const float *gate, const WeightView &w, float eps, float *y,
                                   int64_t n_rows, int64_t dim) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_rms_norm_gated_params(x, gate, w, y, n_rows, dim);
    if (n_rows == 0) return;
    norm(1, x, gate, &w, 0.0f, eps, y, n_rows, dim);
}

void VulkanBackend::l2_norm(float *x, int64_t n_rows, int64_t dim, float eps) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_l2_norm_params(x, n_rows, dim, eps);
    if (n_rows == 0) return;
    norm(2, x, nullptr, nullptr, 0.0f, eps, x, n_rows, dim);
}

void VulkanBackend::rope(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t *positions,
                         const RopeParams &p) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_rope_params(x, n_tokens, n_heads, head_dim, positions, p);
    if (n_tokens == 0 || n_heads == 0 || p.rotary_dim == 0) return;
    // The norm before it (q-norm, k-norm), deferred, folded in (op_fusion.cpp). The
    // table's copy writes fresh scratch only, so it may go ahead of the deferred norms.
    BufferSlice table;
    {
        const DeferredHold hold(*this, attention_fusion_);
        table = rope_table_on_device(n_tokens, positions, p);
    }
    if (rope_fused(x, n_tokens, n_heads, head_dim, table, p)) return;
    const int64_t half = p.rotary_dim / 2;
    const uint64_t bytes = uint64_t(n_tokens * n_heads * head_dim) * sizeof(float);
    const BufferSlice xs = stream_->input_to_modify(x, bytes);
    const uint32_t push[5] = {uint32_t(n_tokens), uint32_t(n_heads), uint32_t(head_dim), uint32_t(half),
                              p.interleaved ? 1u : 0u};
    const int64_t rows = n_tokens * n_heads;
    const uint32_t gx = uint32_t((half + 63) / 64);
    const uint32_t gy = uint32_t(std::min<int64_t>(rows, 65535)), gz = uint32_t((rows + 65534) / 65535);
    stream_->dispatch(pipelines_->get("rope", 2), {xs, table}, push, sizeof push, gx, gy, gz);
    stream_->output(xs, x, bytes);
    submit();
}

BufferSlice VulkanBackend::rope_table_on_device(int64_t n_tokens, const int32_t *positions, const RopeParams &p) {
    const int64_t half = p.rotary_dim / 2;
    // The angles as the CPU backend takes them: the float32 product, then cos and sin in
    // double, rounded once. Computing them is most of rope's host time in a prefill (512
    // tokens x 64 angles, twice a layer), and q and k and every layer take the same
    // positions: the last table is kept and reused while positions and frequencies match.
    RopeTable &rt = rope_table_;
    const bool same = rt.attention_factor == p.attention_factor &&
                      rt.positions.size() == size_t(n_tokens) && rt.inv_freq.size() == size_t(half) &&
                      std::equal(positions, positions + n_tokens, rt.positions.begin()) &&
                      std::equal(p.inv_freq, p.inv_freq + half, rt.inv_freq.begin());
    if (!same) {
        rt.positions.assign(positions, positions + n_tokens);
        rt.inv_freq.assign(p.inv_freq, p.inv_freq + half);
        rt.attention_factor = p.attention_factor;
        rt.cos_sin.resize(size_t(n_tokens * half * 2));
        for (int64_t t = 0; t < n_tokens; ++t) {
            const float pos = float(positions[t]);
            for (int64_t i = 0; i < half; ++i) {
                const double theta = double(pos * p.inv_freq[i]);
                rt.cos_sin[size_t((t * half + i) * 2)] = float(std::cos(theta)) * p.attention_factor;
                rt.cos_sin[size_t((t * half + i) * 2 + 1)] = float(std::sin(theta)) * p.attention_factor;
            }
        }
        ++rope_tables_built_;
    }
    // q and k, and every layer of a step, take the same table: with the decode fusion on,
    // it is copied to the device once until the scratch is reset (a wait) or the table
    // changes, so that later ropes wait for no copy of their own.
    BufferSlice table = rope_table_device_;
    if (!decode_fusion_ || rope_table_device_resets_ != stream_->scratch_resets() ||
        rope_table_device_built_ != rope_tables_built_ || table.size != rt.cos_sin.size() * sizeof(float)) {
        table = stream_->host_scratch(rt.cos_sin.size() * sizeof(float));
        std::memcpy(table.mapped, rt.cos_sin.data(), rt.cos_sin.size() * sizeof(float));
        table = stream_->to_device(table);
        rope_table_device_ = table;
        rope_table_device_resets_ = stream_->scratch_resets();
        rope_table_device_built_ = rope_tables_built_;
        ++rope_table_copies_;
    }
    return table;
}

}  // namespace mst
