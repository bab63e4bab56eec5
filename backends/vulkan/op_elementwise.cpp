// Elementwise gates: silu_mul, sigmoid_mul and clamped_swiglu, and the residual add and
// row gather that keep a step's host work on the device (shaders/elementwise.comp).
#include "backends/vulkan/env_switch.h"
#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"

namespace mst {
namespace {

struct ElementwisePush {
    uint32_t n, mode, dim, span;
    float alpha, limit;
};

}  // namespace

void VulkanBackend::record_silu_mul(const BufferSlice &a, const BufferSlice &b, const BufferSlice &out, int64_t n) {
    ElementwisePush push{uint32_t(n), 0, 1, 1, 0.0f, 0.0f};
    uint32_t gx, gy;
    groups_for(n, 256, gx, gy);
    stream_->dispatch(pipelines_->get("elementwise", 3), {a, b, out}, &push, sizeof push, gx, gy);
}

void VulkanBackend::silu_mul(const float *gate, const float *up, float *out, int64_t n) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_silu_mul_params(gate, up, out, n);
    if (n == 0) return;
    const uint64_t bytes = uint64_t(n) * sizeof(float);
    const BufferSlice a = stream_->input(gate, bytes), b = stream_->input(up, bytes);
    const BufferSlice o = stream_->output_buffer(bytes);
    record_silu_mul(a, b, o, n);
    stream_->output(o, out, bytes);
    submit();
}

void VulkanBackend::sigmoid_mul(float *x, const float *gate, int64_t n_rows, int64_t dim, int64_t gate_dim) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_sigmoid_mul_params(x, gate, n_rows, dim, gate_dim);
    if (n_rows == 0) return;
    const int64_t n = n_rows * dim;
    const BufferSlice a = stream_->input(x, uint64_t(n) * sizeof(float));
    const BufferSlice g = stream_->input(gate, uint64_t(n_rows * gate_dim) * sizeof(float));
    const BufferSlice o = stream_->output_buffer(uint64_t(n) * sizeof(float));
    ElementwisePush push{uint32_t(n), 1, uint32_t(dim), uint32_t(dim / gate_dim), 0.0f, 0.0f};
    uint32_t gx, gy;
    groups_for(n, 256, gx, gy);
    stream_->dispatch(pipelines_->get("elementwise", 3), {a, g, o}, &push, sizeof push, gx, gy);
    stream_->output(o, x, o.size);
    submit();
}

void VulkanBackend::clamped_swiglu(const float *gate_up, float *out, int64_t n_rows, int64_t n_inter, float alpha,
                                   float limit) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_clamped_swiglu_params(gate_up, out, n_rows, n_inter);
    if (n_rows == 0 || n_inter == 0) return;
    const int64_t n = n_rows * n_inter;
    const BufferSlice a = stream_->input(gate_up, uint64_t(2 * n) * sizeof(float));
    const BufferSlice o = stream_->output_buffer(uint64_t(n) * sizeof(float));
    ElementwisePush push{uint32_t(n), 2, uint32_t(n_inter), 1, alpha, limit};
    uint32_t gx, gy;
    groups_for(n, 256, gx, gy);
    stream_->dispatch(pipelines_->get("elementwise", 3), {a, unused_binding(), o}, &push, sizeof push, gx, gy);
    stream_->output(o, out, o.size);
    submit();
}

void VulkanBackend::add(float *x, const float *y, int64_t n) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_add_params(x, y, n);
    if (n == 0) return;
    const uint64_t bytes = uint64_t(n) * sizeof(float);
    BufferSlice a;
    {
        // x from host memory (the first layer's residual) is a copy into fresh scratch:
        // it may go ahead of a deferred product, which the add may then fold in. (Not
        // when x is pending: its input may run the batch, which records them first.)
        const DeferredHold hold(*this, attention_fusion_ && !stream_->pending(x, bytes));
        a = stream_->input(x, bytes);
    }
    // y a product still deferred (the o product): the add in its epilogue (op_fusion.cpp).
    if (add_fused(x, a, y, n)) return;
    const BufferSlice b = stream_->input(y, bytes);
    const BufferSlice o = stream_->output_buffer(bytes);
    ElementwisePush push{uint32_t(n), 3, 1, 1, 0.0f, 0.0f};
    uint32_t gx, gy;
    groups_for(n, 256, gx, gy);
    stream_->dispatch(pipelines_->get("elementwise", 3), {a, b, o}, &push, sizeof push, gx, gy);
    stream_->output(o, x, bytes);
    submit();
}

void VulkanBackend::configure_decode_fusion_from_environment() {
    decode_fusion_ = env_switch("MST_VULKAN_DECODE_FUSION", decode_fusion_,
                                "contiguous copy_rows record no command, one rope table per batch",
                                "a copy dispatch per copy_rows, a rope table upload per rope");
}

void VulkanBackend::copy_rows(const float *src, int64_t src_stride, float *dst, int64_t n_rows, int64_t row_len) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_copy_rows_params(src, src_stride, dst, n_rows, row_len);
    if (n_rows == 0 || row_len == 0) return;
    const int64_t n = n_rows * row_len;
    if (decode_fusion_ && (n_rows == 1 || src_stride == row_len)) {
        // Contiguous rows (a decode step's KV append: one row per head) are the source's
        // bytes as they are: the result is the source's device slice itself, no command
        // and no barrier. The attention then copies the new rows into its cache straight
        // from the k and v products. Ops that write over their input take a copy where
        // such a shared slice would change another result (CommandStream::input_to_modify).
        const BufferSlice a = stream_->input(src, uint64_t(n) * sizeof(float));
        stream_->output(a, dst, a.size);
        ++copy_rows_aliased_;
        submit();
        return;
    }
    if (src_stride > int64_t(UINT32_MAX) || (n_rows - 1) * src_stride + row_len > int64_t(UINT32_MAX))
        fail(MST_ERR_UNSUPPORTED, "copy_rows: source of {} rows at stride {} is beyond 2^32 floats", n_rows, src_stride);
    const BufferSlice a = stream_->input(src, uint64_t((n_rows - 1) * src_stride + row_len) * sizeof(float));
    const BufferSlice o = stream_->output_buffer(uint64_t(n) * sizeof(float));
    ElementwisePush push{uint32_t(n), 4, uint32_t(row_len), uint32_t(src_stride), 0.0f, 0.0f};
    uint32_t gx, gy;
    groups_for(n, 256, gx, gy);
    stream_->dispatch(pipelines_->get("elementwise", 3), {a, unused_binding(), o}, &push, sizeof push, gx, gy);
    stream_->output(o, dst, o.size);
    submit();
}

}  // namespace mst
