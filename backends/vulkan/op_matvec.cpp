// One token's dense products (a decode step's q/k/v/o, router, lm_head) through
// shaders/matvec.comp, which keeps several loads per lane in flight; batches of tokens,
// other weight types and rows that are not whole 16-byte units keep matmul.comp
// (op_matmul.cpp). MST_VULKAN_MATVEC=0 turns it off (the kernels before it, to compare).
// The shapes of the one-token kernels (matvec_tuning.h, MST_VULKAN_MATVEC_TUNING) and their
// q4 unit (MST_VULKAN_Q4_BLOCK) are set here too.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>

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
    q4_block_ = env_switch("MST_VULKAN_Q4_BLOCK", q4_block_, "a q4 unit is a whole block (scale read once)",
                           "a q4 unit is a quarter block (scale read per quarter)");
    norm_x_shared_ = env_switch("MST_VULKAN_NORM_X_SHARED", norm_x_shared_,
                                "norm-folded products normalise x once per workgroup in shared memory",
                                "norm-folded products normalise x where each lane reads it");
    router_ahead_ = env_switch("MST_VULKAN_ROUTER_AHEAD", router_ahead_,
                               "the fused router loads its weights, x and the norm weight before the norm's sum",
                               "the fused router loads weights and x per unit after the norm");
    const MatvecShape shape{lanes_, rows_per_group_};
    default_matvec_tuning_ = MatvecTuning{shape, shape, shape};
    matvec_tuning_ = default_matvec_tuning_;
    if (const char *env = std::getenv("MST_VULKAN_MATVEC_TUNING"); env && *env) {
        std::string why;
        MatvecTuning t;
        if (!parse_matvec_tuning(env, default_matvec_tuning_, t, why) || !set_matvec_tuning(t, why))
            fail(MST_ERR_INVALID_ARGUMENT, "MST_VULKAN_MATVEC_TUNING: {}", why);
        log(MST_LOG_INFO, "vulkan: one-token product shapes {} (MST_VULKAN_MATVEC_TUNING)", matvec_tuning_.name());
    }
    // norm_vec4.comp (op_norm_rope.cpp), switched here with the other decode kernels.
    use_norm_vec4_ = env_switch("MST_VULKAN_NORM_VEC4", use_norm_vec4_, "norm_vec4.comp", "norm.comp");
}

bool VulkanBackend::set_matvec_tuning(const MatvecTuning &tuning, std::string &why) {
    const VkPhysicalDeviceLimits &lim = ctx_->properties().limits;
    const std::pair<const char *, const MatvecShape *> families[] = {
        {"dense", &tuning.dense}, {"swiglu", &tuning.swiglu}, {"combine", &tuning.combine}};
    if (!check_matvec_tuning(tuning, why)) return false;
    for (const auto &[family, s] : families) {
        if (s->threads() > lim.maxComputeWorkGroupInvocations || s->lanes > lim.maxComputeWorkGroupSize[0] ||
            s->rows > lim.maxComputeWorkGroupSize[1]) {
            why = std::string(family) + ": " + s->name() + " exceeds the device's workgroups (" +
                  std::to_string(lim.maxComputeWorkGroupInvocations) + " invocations, " +
                  std::to_string(lim.maxComputeWorkGroupSize[0]) + " x " + std::to_string(lim.maxComputeWorkGroupSize[1]) +
                  ")";
            return false;
        }
    }
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    if (!(tuning == matvec_tuning_)) {
        matvec_tuning_ = tuning;
        forget_matvec_pipelines();
    }
    return true;
}

void VulkanBackend::set_q4_block(bool on) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    if (on != q4_block_) {
        q4_block_ = on;
        forget_matvec_pipelines();
    }
}

void VulkanBackend::set_norm_x_shared(bool on) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    if (on != norm_x_shared_) {
        norm_x_shared_ = on;
        forget_matvec_pipelines();
    }
}

void VulkanBackend::set_router_ahead(bool on) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    if (on != router_ahead_) {
        router_ahead_ = on;
        forget_matvec_pipelines();
    }
}

void VulkanBackend::forget_matvec_pipelines() {
    // The pipeline cache keeps every shape made; these only point at the current ones.
    std::fill(std::begin(matvec_pipelines_), std::end(matvec_pipelines_), nullptr);
    for (auto &kind : fused_matvec_pipelines_) std::fill(std::begin(kind), std::end(kind), nullptr);
    std::fill(std::begin(matvec_id_pipelines_), std::end(matvec_id_pipelines_), nullptr);
    std::fill(std::begin(matvec_id_swiglu_pipelines_), std::end(matvec_id_swiglu_pipelines_), nullptr);
    std::fill(std::begin(matvec_id_combine_pipelines_), std::end(matvec_id_combine_pipelines_), nullptr);
    std::fill(std::begin(matvec_id_down_pipelines_), std::end(matvec_id_down_pipelines_), nullptr);
}

const VulkanPipeline &VulkanBackend::matvec_family_pipeline(const std::string &shader, uint32_t n_bindings,
                                                            const MatvecShape &s, uint32_t extra) {
    // subgroupAdd sums one subgroup: a row of whole subgroups takes it (matvec_row_total.glsl
    // adds the row's subgroups in shared memory); a row narrower than a subgroup would mix
    // rows, so it takes the shared-memory tree.
    const bool sg = use_subgroup_ && s.lanes % ctx_->subgroup_size() == 0;
    // A constant a shader does not declare is ignored (STAGE_X outside the norm variants).
    return pipelines_->get(sg ? shader + "_sg" : shader, n_bindings,
                           {s.lanes, s.rows, extra, q4_block_ ? 1u : 0u, s.per_lane, norm_x_shared_ ? 1u : 0u,
                            router_ahead_ ? 1u : 0u});
}

bool VulkanBackend::record_matvec(const WeightView &w, const DeviceWeight &dw, const BufferSlice &x,
                                  const BufferSlice &y, int64_t n_tokens) {
    if (!use_matvec_ || n_tokens != 1) return false;
    const char *shader = matvec_shader(w.dtype, w.cols);
    if (!shader) return false;
    const VulkanPipeline *&cached = matvec_pipelines_[size_t(w.dtype)];
    const MatvecShape &shape = matvec_tuning_.dense;
    if (!cached) cached = &matvec_family_pipeline(shader, 3, shape);
    const uint32_t push[2] = {uint32_t(w.rows), uint32_t(w.cols)};
    uint32_t gx, gy;
    groups_for(w.rows, shape.rows_per_group(), gx, gy);
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
