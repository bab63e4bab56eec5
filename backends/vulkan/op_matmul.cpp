// The matrix products: matmul (every stored weight type), matmul_block_fp8, and
// matmul_xw / matmul_transposed, which are one product y = x W (shaders/matmul.comp,
// shaders/matmul_ggml.comp for the GGML legacy types, shaders/matmul_kquant.comp for the
// K-quants, shaders/matmul_xw.comp).
#include <algorithm>
#include <cstring>

#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"

namespace mst {
namespace {

const char *matmul_shader(DType t) {
    switch (t) {
        case DType::F32: return "matmul_f32";
        case DType::F16: return "matmul_f16";
        case DType::BF16: return "matmul_bf16";
        case DType::Q8: return "matmul_q8";
        case DType::Q4: return "matmul_q4";
        case DType::MXFP4: return "matmul_mxfp4";
        case DType::F8_E4M3: return "matmul_fp8";
        case DType::PACKED_I4: return "matmul_i4";
        case DType::PACKED_I8: return "matmul_i8";
        case DType::GGML_Q4_0: return "matmul_ggml_q4_0";  // shaders/matmul_ggml.comp
        case DType::GGML_Q5_0: return "matmul_ggml_q5_0";
        case DType::GGML_Q5_1: return "matmul_ggml_q5_1";
        case DType::GGML_IQ4_NL: return "matmul_ggml_iq4_nl";
        case DType::GGML_IQ4_XS: return "matmul_ggml_iq4_xs";
        case DType::GGML_MXFP4: return "matmul_ggml_mxfp4";
        case DType::GGML_Q2_K: return "matmul_kquant_q2_k";  // shaders/matmul_kquant.comp
        case DType::GGML_Q3_K: return "matmul_kquant_q3_k";
        case DType::GGML_Q4_K: return "matmul_kquant_q4_k";
        case DType::GGML_Q5_K: return "matmul_kquant_q5_k";
        case DType::GGML_Q6_K: return "matmul_kquant_q6_k";
        default: return nullptr;
    }
}

struct MatmulPush {
    uint32_t rows, cols, n_tokens, block_rows, block_cols, scale_cols;
};

// The shaders' limit, past the op's own checks (backend.h): 32-bit sizes.
void check_device_sizes(const char *op, const WeightView &w, int64_t n_tokens) {
    if (w.rows > INT32_MAX || w.cols > INT32_MAX || n_tokens > INT32_MAX)
        fail(MST_ERR_UNSUPPORTED, "{}: sizes beyond 2^31 (rows {}, cols {}, n_tokens {})", op, w.rows, w.cols, n_tokens);
}

}  // namespace

void VulkanBackend::record_matmul(const WeightView &w, const DeviceWeight &dw, const BufferSlice &x,
                                  const BufferSlice &y, int64_t n_tokens, const DeviceWeight *fp8_scales,
                                  int32_t block_rows, int32_t block_cols) {
    const char *shader = matmul_shader(w.dtype);
    if (!shader) fail(MST_ERR_UNSUPPORTED, "matmul: weight dtype {} is not supported", dtype_name(w.dtype));
    if (record_gemm(w, dw, x, y, n_tokens)) return;  // a batch of tokens: op_gemm.cpp
    // Looked up once per type: this runs for every product of a decode step.
    const VulkanPipeline *&cached = matmul_pipelines_[size_t(w.dtype)];
    if (!cached)
        cached = &pipelines_->get(use_subgroup_ ? std::string(shader) + "_sg" : std::string(shader), 4,
                                  {lanes_, rows_per_group_});
    const VulkanPipeline &p = *cached;
    MatmulPush push{uint32_t(w.rows), uint32_t(w.cols), uint32_t(n_tokens), 1, 1, 1};
    BufferSlice aux = unused_binding();
    if (w.dtype == DType::MXFP4) aux = dw.scales;
    if (w.dtype == DType::PACKED_I4 || w.dtype == DType::PACKED_I8) {
        aux = dw.scales;
        push.block_cols = uint32_t(w.group_size);
        push.scale_cols = uint32_t(w.cols / w.group_size);
    }
    if (w.dtype == DType::F8_E4M3) {
        aux = fp8_scales->data;
        push.block_rows = uint32_t(block_rows);
        push.block_cols = uint32_t(block_cols);
        push.scale_cols = uint32_t((w.cols + block_cols - 1) / block_cols);
    }
    const uint32_t gx = uint32_t((w.rows + rows_per_group_ - 1) / rows_per_group_);
    const uint32_t gy = uint32_t((n_tokens + 3) / 4);
    if (gx > 65535 || gy > 65535)
        fail(MST_ERR_UNSUPPORTED, "matmul: {} rows x {} tokens exceed one dispatch", w.rows, n_tokens);
    stream_->dispatch(p, {dw.data, x, y, aux}, &push, sizeof push, gx, gy);
}

void VulkanBackend::matmul(const WeightView &w, const float *x, float *y, int64_t n_tokens) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_matmul_params(w, x, y, n_tokens);
    check_device_sizes("matmul", w, n_tokens);
    if (w.rows == 0 || n_tokens == 0) return;
    if (w.cols == 0) {
        std::fill(y, y + w.rows * n_tokens, 0.0f);
        return;
    }
    // One token inside a batch: folded with the norm before it, or left for the add after
    // it (op_fusion.cpp).
    if (n_tokens == 1 && matmul_fused(w, x, y)) return;
    const DeviceWeight dw = residency_->get(*stream_, w);
    const BufferSlice xs = stream_->input(x, uint64_t(n_tokens * w.cols) * sizeof(float));
    const BufferSlice ys = stream_->output_buffer(uint64_t(n_tokens * w.rows) * sizeof(float));
    if (!record_matvec(w, dw, xs, ys, n_tokens)) record_matmul(w, dw, xs, ys, n_tokens);  // op_matvec.cpp
    stream_->output(ys, y, ys.size);
    submit();
}

void VulkanBackend::matmul_block_fp8(const WeightView &w, const WeightView &scale_inv, int32_t block_rows,
                                     int32_t block_cols, const float *x, float *y, int64_t n_tokens) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_matmul_block_fp8_params(w, scale_inv, block_rows, block_cols, x, y, n_tokens);
    check_device_sizes("matmul_block_fp8", w, n_tokens);
    if (w.rows == 0 || n_tokens == 0) return;
    if (w.cols == 0) {
        std::fill(y, y + w.rows * n_tokens, 0.0f);
        return;
    }
    const DeviceWeight dw = residency_->get(*stream_, w);
    // The scales need not be aligned on the host; the device copy is.
    const DeviceWeight ds = residency_->get(*stream_, scale_inv);
    const BufferSlice xs = stream_->input(x, uint64_t(n_tokens * w.cols) * sizeof(float));
    const BufferSlice ys = stream_->output_buffer(uint64_t(n_tokens * w.rows) * sizeof(float));
    record_matmul(w, dw, xs, ys, n_tokens, &ds, block_rows, block_cols);
    stream_->output(ys, y, ys.size);
    submit();
}

namespace {

const char *xw_shader(DType t) {
    switch (t) {
        case DType::F32: return "matmul_xw_f32";
        case DType::F16: return "matmul_xw_f16";
        case DType::BF16: return "matmul_xw_bf16";
        default: return nullptr;
    }
}

}  // namespace

void VulkanBackend::xw_product(const char *op, const WeightView &w, const float *x, float *y, int64_t n_tokens) {
    VulkanBackend &b = *this;
    {
        check_device_sizes(op, w, n_tokens);
        const char *shader = xw_shader(w.dtype);
        if (w.cols == 0 || n_tokens == 0) return;
        if (w.rows == 0) {
            std::fill(y, y + n_tokens * w.cols, 0.0f);
            return;
        }
        const DeviceWeight dw = b.residency_->get(*b.stream_, w);
        const BufferSlice xs = b.stream_->input(x, uint64_t(n_tokens * w.rows) * sizeof(float));
        const BufferSlice ys = b.stream_->output_buffer(uint64_t(n_tokens * w.cols) * sizeof(float));
        const uint32_t push[3] = {uint32_t(w.rows), uint32_t(w.cols), uint32_t(n_tokens)};
        const uint32_t gx = uint32_t((w.cols + 63) / 64), gy = uint32_t((n_tokens + 3) / 4);
        if (gx > 65535 || gy > 65535) fail(MST_ERR_UNSUPPORTED, "{}: {} columns x {} tokens exceed one dispatch", op, w.cols, n_tokens);
        b.stream_->dispatch(b.pipelines_->get(shader, 3), {dw.data, xs, ys}, push, sizeof push, gx, gy);
        b.stream_->output(ys, y, ys.size);
        b.submit();
    }
}

void VulkanBackend::matmul_xw(const WeightView &w, const float *x, float *y, int64_t n_tokens) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_matmul_xw_params(w, x, y, n_tokens);
    xw_product("matmul_xw", w, x, y, n_tokens);
}

void VulkanBackend::matmul_transposed(const WeightView &w, const float *x, float *y, int64_t n_tokens) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_matmul_transposed_params(w, x, y, n_tokens);
    xw_product("matmul_transposed", w, x, y, n_tokens);
}

}  // namespace mst
