// One token's routed SwiGLU experts chosen on the device (backends/device_experts.h,
// docs/device_graph.md "One submission per resident decode step"): the ids and weights
// stay results of the batch, each part's product is one dispatch over the k chosen
// experts (shaders/matvec_id.comp, workgroup z = the j-th choice, its rows found through
// the layer's slot table), then one silu_mul over the k experts' gate and up rows and one
// combine (shaders/combine_id.comp). Five dispatches a layer where routed_swiglu records
// 2k + 3, and no wait for the host. With MST_VULKAN_MOE_FUSION (the default) two: gate, up
// and SwiGLU in one (matvec_id_swiglu.comp), the down products and their sum in ascending
// id in the other (matvec_id_combine.comp), which routed_swiglu_by_id_add also adds into
// the residual stream (docs/gpu_decode_kernels.md, "The MoE half of a layer in fewer
// dispatches"). The down products and their sum take one dispatch only with
// MST_VULKAN_COMBINE_IN_DOWN=1: on an H100 the one-dispatch kernel took 38.5 us against
// 11.3 + 7.6 for matvec_id's down grid and combine_id (bench/README.md, 2026-12-07 07:35 UTC).
#include <algorithm>
#include <string>

#include "backends/vulkan/env_switch.h"
#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"
#include "core/log.h"

namespace mst {

void VulkanBackend::configure_experts_by_id_from_environment() {
    experts_by_id_ = env_switch("MST_VULKAN_EXPERTS_BY_ID", experts_by_id_, "resident experts chosen on the device",
                                "a wait per layer, the host looks the experts up");
    if (!experts_by_id_) log(MST_LOG_INFO, "vulkan: routed experts looked up on the host (MST_VULKAN_EXPERTS_BY_ID=0)");
}

void VulkanBackend::configure_moe_fusion_from_environment() {
    moe_fusion_ = env_switch("MST_VULKAN_MOE_FUSION", moe_fusion_,
                             "top-k by rank, gate+up+SwiGLU in one dispatch, the residual add in the down products' sum",
                             "the k-pass top-k, a dispatch per product, silu_mul, combine_id and the add");
    combine_in_down_ = env_switch("MST_VULKAN_COMBINE_IN_DOWN", combine_in_down_,
                                  "the down products, their sum and the residual add in one dispatch",
                                  "the down products, then their sum and the residual add (two dispatches)");
}

void VulkanBackend::set_experts_by_id(bool on) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    experts_by_id_ = on;
}

bool VulkanBackend::make_experts_resident(const SwigluExpertSet &set) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    if (!experts_by_id_) return false;
    // Every decode step asks again for each layer: a layer already complete on the device,
    // with the shapes of the set's first expert, is resident without the walk over every
    // expert below (unsupported() and the slot table's add check 3 x 128 views a layer).
    if (const ExpertSlots::Layer *L = residency_->slots().find(set.layer);
        L && L->missing == 0 && L->n_experts == set.n_experts &&
        set.model_expert_bytes <= residency_->expert_stats().budget && set.gate && set.up && set.down &&
        set.gate[0].data && set.up[0].data && set.down[0].data) {
        const WeightView *views[3] = {&set.gate[0], &set.up[0], &set.down[0]};
        bool same = true;
        for (int p = 0; p < 3 && same; ++p)
            same = views[p]->dtype == L->parts[p].dtype && views[p]->rows == L->parts[p].rows &&
                   views[p]->cols == L->parts[p].cols;
        if (same) return true;
    }
    if (const std::string why = ExpertSlots::unsupported(set); !why.empty()) {
        log(MST_LOG_DEBUG, "vulkan: layer {}'s experts stay on the host path: {}", set.layer, why);
        return false;
    }
    return residency_->make_resident(*stream_, set);
}

bool VulkanBackend::experts_resident(int64_t layer, int32_t n_experts) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    const ExpertSlots::Layer *L = experts_by_id_ ? residency_->slots().find(layer) : nullptr;
    return L && L->n_experts == n_experts && L->missing == 0;
}

void VulkanBackend::check_expert_misses() {
    if (expert_miss_ == 0 || stream_->pending(&expert_miss_, sizeof expert_miss_)) return;
    const uint32_t m = expert_miss_;
    expert_miss_ = 0;
    fail(MST_ERR_BACKEND,
         "vulkan: layer {}'s routed expert {} is not on the device (routed_swiglu_by_id on a layer whose experts "
         "are not all resident); the step's results are not valid",
         (m - 1) >> 16, (m - 1) & 0xffffu);
}

void VulkanBackend::routed_swiglu_by_id(int64_t layer, const float *h, float *out, int64_t hidden,
                                        const int32_t *ids, const float *weights, int32_t k) {
    record_experts_by_id(layer, h, out, hidden, ids, weights, k, false);
}

bool VulkanBackend::routed_swiglu_by_id_add(int64_t layer, const float *h, float *x, int64_t hidden,
                                            const int32_t *ids, const float *weights, int32_t k) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    if (!moe_fusion_) return false;  // the caller records routed_swiglu_by_id and the add, as before
    record_experts_by_id(layer, h, x, hidden, ids, weights, k, true);
    return true;
}

void VulkanBackend::record_experts_by_id(int64_t layer, const float *h, float *out, int64_t hidden,
                                         const int32_t *ids, const float *weights, int32_t k, bool residual) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    const char *op = residual ? "routed_swiglu_by_id_add" : "routed_swiglu_by_id";
    const ExpertSlots::Layer *L = residency_->slots().find(layer);
    if (!L) fail(MST_ERR_INVALID_ARGUMENT, "{}: layer {}'s experts were not made resident", op, layer);
    if (!h || !out || !ids || !weights) fail(MST_ERR_INVALID_ARGUMENT, "{}: null h, out, ids or weights", op);
    const ExpertSlots::Part &gate = L->parts[0], &up = L->parts[1], &down = L->parts[2];
    if (k < 1 || k > L->n_experts || k > 65535)
        fail(MST_ERR_INVALID_ARGUMENT, "{}: k = {} is outside 1..{}", op, k, L->n_experts);
    if (hidden != gate.cols || hidden != down.rows)
        fail(MST_ERR_INVALID_ARGUMENT, "{}: hidden {} against layer {}'s experts of {}", op, hidden, layer, gate.cols);
    if (layer > 0xffff) fail(MST_ERR_UNSUPPORTED, "{}: layer {} (the miss flag names at most 65535)", op, layer);
    ++experts_by_id_calls_;

    const int64_t inter = gate.rows;
    const uint64_t ku = uint64_t(k);
    const BufferSlice x = stream_->input(h, uint64_t(hidden) * sizeof(float));
    const BufferSlice id = stream_->input(ids, ku * sizeof(int32_t));
    const BufferSlice wt = stream_->input(weights, ku * sizeof(float));
    const BufferSlice miss = stream_->input(&expert_miss_, sizeof expert_miss_);
    const BufferSlice table = whole(L->table);
    const BufferSlice g = stream_->device_scratch(ku * uint64_t(inter) * sizeof(float));
    // The pipeline of one of the id kernels (shaders/matvec_id*.comp) for part p's type at
    // shape s. experts: matvec_id_combine.comp's experts at once (its workgroup's z).
    auto pipeline = [&](const VulkanPipeline *(&cache)[32], const char *kernel, const ExpertSlots::Part &p,
                        uint32_t bindings, const MatvecShape &s, uint32_t experts = 1) -> const VulkanPipeline & {
        const VulkanPipeline *&cached = cache[size_t(p.dtype)];
        if (!cached)
            cached = &matvec_family_pipeline(std::string(kernel) + (matvec_shader(p.dtype, p.cols) + 6), bindings, s,
                                             experts);
        return *cached;
    };
    auto row_groups = [&](const ExpertSlots::Part &p, const MatvecShape &s) {
        const uint32_t gx = uint32_t((p.rows + s.rows_per_group() - 1) / s.rows_per_group());
        if (p.rows > int64_t(65535) * s.rows_per_group())
            fail(MST_ERR_UNSUPPORTED, "{}: {} rows in one expert part", op, p.rows);
        return gx;
    };
    // matvec_id.comp keeps the default shape: the reference of the fused kernels.
    const MatvecShape &plain = default_matvec_tuning_.swiglu, &swiglu = matvec_tuning_.swiglu,
                      &combine = matvec_tuning_.combine;
    // With the MoE fusion on, the down products take the combine family's shape (they are
    // that family's work, in matvec_id_combine.comp or here before combine_id).
    auto product = [&](const ExpertSlots::Part &p, const BufferSlice &xs, uint32_t x_stride, const BufferSlice &ys,
                       bool down_of_fusion = false) {
        const uint32_t push[5] = {uint32_t(p.rows), uint32_t(p.cols), x_stride, uint32_t(L->n_experts),
                                  uint32_t(layer)};
        const MatvecShape &s = down_of_fusion ? combine : plain;
        stream_->dispatch(pipeline(down_of_fusion ? matvec_id_down_pipelines_ : matvec_id_pipelines_, "matvec_id", p,
                                   6, s),
                          {whole(p.stack), xs, ys, table, id, miss}, push, sizeof push, row_groups(p, s), 1,
                          uint32_t(k));
    };
    const bool fused = moe_fusion_ && gate.dtype == up.dtype && gate.rows == up.rows && gate.cols == up.cols;
    if (fused) {
        // Gate, up and SwiGLU in one dispatch (shaders/matvec_id_swiglu.comp).
        const uint32_t push[5] = {uint32_t(gate.rows), uint32_t(gate.cols), 0, uint32_t(L->n_experts),
                                  uint32_t(layer)};
        stream_->dispatch(pipeline(matvec_id_swiglu_pipelines_, "matvec_id_swiglu", gate, 7, swiglu),
                          {whole(gate.stack), x, g, table, id, miss, whole(up.stack)}, push, sizeof push,
                          row_groups(gate, swiglu), 1, uint32_t(k));
    } else {
        const BufferSlice u = stream_->device_scratch(ku * uint64_t(inter) * sizeof(float));
        product(gate, x, 0, g);
        product(up, x, 0, u);
        record_silu_mul(g, u, g, int64_t(k) * inter);
    }
    const BufferSlice os = stream_->input_to_modify(out, uint64_t(hidden) * sizeof(float));
    // residual: only with the fusion on (routed_swiglu_by_id_add).
    if ((moe_fusion_ || residual) && combine_in_down_) {
        // The down products, their sum in ascending id and (residual) the add into x in one
        // dispatch (shaders/matvec_id_combine.comp).
        const uint32_t push[7] = {uint32_t(down.rows), uint32_t(down.cols), uint32_t(inter / 4),
                                  uint32_t(L->n_experts), uint32_t(layer), uint32_t(k), residual ? 1u : 0u};
        // The k experts' down rows are computed in parallel, up to 8 at once (the workgroup's
        // z), as many as the device's workgroup limits allow at the combine family's shape.
        const VkPhysicalDeviceLimits &lim = ctx_->properties().limits;
        const uint32_t experts = std::max<uint32_t>(
            1, std::min({8u, lim.maxComputeWorkGroupInvocations / combine.threads(), lim.maxComputeWorkGroupSize[2]}));
        // matvec_id_combine.comp takes one row a lane (its rows' totals meet in shared memory
        // per row): the combine family's P is matvec_id's down products' alone.
        MatvecShape one_row = combine;
        one_row.per_lane = 1;
        stream_->dispatch(pipeline(matvec_id_combine_pipelines_, "matvec_id_combine", down, 7, one_row, experts),
                          {whole(down.stack), g, os, table, id, miss, wt}, push, sizeof push, row_groups(down, one_row));
    } else {
        // The down products on matvec_id's grid, then combine_id: their sum in ascending id
        // added to out one expert at a time, or (residual) summed from zero and then added,
        // the two forms matvec_id_combine.comp computes.
        const BufferSlice y = stream_->device_scratch(ku * uint64_t(hidden) * sizeof(float));
        product(down, g, uint32_t(inter / 4), y, moe_fusion_);
        const uint32_t push[3] = {uint32_t(k), uint32_t(hidden), residual ? 1u : 0u};
        stream_->dispatch(pipelines_->get("combine_id", 4), {y, id, wt, os}, push, sizeof push,
                          uint32_t((hidden + 63) / 64));  // combine_id.comp's local size
    }
    // The next layer's q/k/v weights warmed beside the combine (kWarmQkv).
    warm_after_layer(layer);
    stream_->output(os, out, os.size);
    stream_->output(miss, &expert_miss_, sizeof expert_miss_);
    submit();
    stream_->kick();
    check_expert_misses();
}

}  // namespace mst
