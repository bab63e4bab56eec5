// One token's dense products (a decode step's q/k/v/o, router, lm_head) through
// shaders/matvec.comp, which keeps several loads per lane in flight; batches of tokens,
// other weight types and rows that are not whole 16-byte units keep matmul.comp
// (op_matmul.cpp). MST_VULKAN_MATVEC=0 turns it off (the kernels before it, to compare).
#include <string>

#include "backends/vulkan/env_switch.h"
#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"
#include "core/log.h"

namespace mst {

const char *matvec_shader(DType t, int64_t cols) {
    switch (t) {
        case DType::F32: return cols % 4 == 0 ? "matvec_f32" : nullptr;
        case DType::F16: return cols % 8 == 0 ? "matvec_f16" : nullptr;
        case DType::BF16: return cols % 8 == 0 ? "matvec_bf16" : nullptr;
        case DType::Q8: return cols % 32 == 0 ? "matvec_q8" : nullptr;
        case DType::Q4: return cols % 32 == 0 ? "matvec_q4" : nullptr;
        default: return nullptr;
    }
}

void VulkanBackend::configure_matvec_from_environment() {
    use_matvec_ = env_switch("MST_VULKAN_MATVEC", use_matvec_, "matvec.comp for one token", "matmul.comp");
    if (!use_matvec_) log(MST_LOG_INFO, "vulkan: one token's products take matmul.comp (MST_VULKAN_MATVEC=0)");
    // norm_vec4.comp (op_norm_rope.cpp), switched here with the other decode kernels.
    use_norm_vec4_ = env_switch("MST_VULKAN_NORM_VEC4", use_norm_vec4_, "norm_vec4.comp", "norm.comp");
}

bool VulkanBackend::record_matvec(const WeightView &w, const DeviceWeight &dw, const BufferSlice &x,
                                  const BufferSlice &y, int64_t n_tokens) {
    if (!use_matvec_ || n_tokens != 1) return false;
    const char *shader = matvec_shader(w.dtype, w.cols);
    if (!shader) return false;
    const VulkanPipeline *&cached = matvec_pipelines_[size_t(w.dtype)];
    if (!cached)
        cached = &pipelines_->get(use_subgroup_ ? std::string(shader) + "_sg" : std::string(shader), 3,
                                  {lanes_, rows_per_group_});
    const uint32_t push[2] = {uint32_t(w.rows), uint32_t(w.cols)};
    uint32_t gx, gy;
    groups_for(w.rows, rows_per_group_, gx, gy);
    if (gy > 1)  // the shader numbers rows by gl_WorkGroupID.x alone
        return false;
    stream_->dispatch(*cached, {dw.data, x, y}, push, sizeof push, gx);
    ++matvec_dispatches_;
    return true;
}

void VulkanBackend::set_matvec(bool on) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    use_matvec_ = on;
}

}  // namespace mst
