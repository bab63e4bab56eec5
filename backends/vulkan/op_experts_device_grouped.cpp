// A batch's routed SwiGLU experts grouped on the device (issue 17, docs/gpu_prefill.md
// "Grouping a prefill's experts on the device"): for a layer whose experts are all stacked
// on the device (ExpertSlots), the router's ids and weights stay results of the batch and
// three small shaders build what the host built after a wait for them: the tokens per
// expert and each choice's row in expert order (expert_groups_count.comp), each expert's
// first row and the grouped GEMM's tile tables (expert_groups_tiles.comp), the gather list
// and each token's uses for the combine (expert_groups_scatter.comp). Then gather_rows,
// the grouped gate, up and down GEMMs over the layer's stacks (a worst-case grid: spare
// tiles have no tokens and exit), silu_mul and the combine, as routed_swiglu_grouped
// records them. Rows, tiles and sums come in the host grouping's order, so the results are
// the same bits. A prefill layer thus needs no wait; the host never learns its ids.
#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "backends/vulkan/env_switch.h"
#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"
#include "core/log.h"

namespace mst {
namespace {

constexpr int64_t kMaxGroupedExperts = 1024;  // expert_groups_tiles.comp's shared arrays
constexpr uint32_t kTileTokens = 64;          // gemm.comp's BN

}  // namespace

void VulkanBackend::configure_device_grouping_from_environment() {
    device_grouping_ = env_switch("MST_VULKAN_DEVICE_GROUPING", device_grouping_,
                                  "a batch's resident experts grouped on the device",
                                  "a wait per layer, the host groups them");
    if (!device_grouping_)
        log(MST_LOG_INFO, "vulkan: a batch's experts are grouped on the host (MST_VULKAN_DEVICE_GROUPING=0)");
}

void VulkanBackend::set_device_grouping(bool on) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    device_grouping_ = on;
}

std::string VulkanBackend::device_grouping_unsupported(const ExpertSlots::Layer &L) const {
    const ExpertSlots::Part &gate = L.parts[0], &up = L.parts[1], &down = L.parts[2];
    if (L.n_experts > kMaxGroupedExperts) return fmt::format("{} experts (at most {})", L.n_experts, kMaxGroupedExperts);
    if (up.dtype != gate.dtype || up.rows != gate.rows || up.cols != gate.cols || up.bytes != gate.bytes)
        return "gate and up parts of different types or shapes";
    if (down.cols != gate.rows) return "down's columns are not gate's rows";
    if (gemm_shader(gate.dtype, true).empty() || gemm_shader(down.dtype, true).empty())
        return "no grouped GEMM for the parts' types (or MST_VULKAN_GEMM=off)";
    // The tile table addresses a slot's weights in whole 16-byte units of 32-bit words.
    for (const ExpertSlots::Part *p : {&gate, &down})
        if (p->bytes % 16 != 0 || uint64_t(L.n_experts) * p->bytes / 4 > UINT32_MAX)
            return fmt::format("expert parts of {} bytes", p->bytes);
    return "";
}

bool VulkanBackend::batch_by_id(int64_t layer, int32_t n_experts, int64_t n_tokens) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    if (!device_grouping_ || !grouped_experts_ || n_tokens < std::max<int64_t>(gemm_min_tokens_, 2) ||
        n_tokens > 65535 || !experts_resident(layer, n_experts))
        return false;
    const std::string why = device_grouping_unsupported(*residency_->slots().find(layer));
    if (!why.empty()) log(MST_LOG_DEBUG, "vulkan: layer {}'s experts are grouped on the host: {}", layer, why);
    return why.empty();
}

void VulkanBackend::routed_swiglu_batch_by_id(int64_t layer, const float *h, float *out, int64_t n_tokens,
                                              int64_t hidden, const int32_t *ids, const float *weights, int32_t k) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    const ExpertSlots::Layer *L = residency_->slots().find(layer);
    if (!L || !batch_by_id(layer, L->n_experts, n_tokens))
        fail(MST_ERR_INVALID_ARGUMENT,
             "routed_swiglu_batch_by_id: layer {} does not take {} tokens by id (batch_by_id says no)", layer, n_tokens);
    if (!h || !out || !ids || !weights)
        fail(MST_ERR_INVALID_ARGUMENT, "routed_swiglu_batch_by_id: null h, out, ids or weights");
    const ExpertSlots::Part &gate = L->parts[0], &up = L->parts[1], &down = L->parts[2];
    if (k < 1 || k > L->n_experts)
        fail(MST_ERR_INVALID_ARGUMENT, "routed_swiglu_batch_by_id: k = {} is outside 1..{}", k, L->n_experts);
    if (hidden != gate.cols || hidden != down.rows)
        fail(MST_ERR_INVALID_ARGUMENT, "routed_swiglu_batch_by_id: hidden {} against layer {}'s experts of {}", hidden,
             layer, gate.cols);
    if (layer > 0xffff)
        fail(MST_ERR_UNSUPPORTED, "routed_swiglu_batch_by_id: layer {} (the miss flag names at most 65535)", layer);
    ++batch_by_id_calls_;

    const uint64_t n = uint64_t(n_tokens), choices = n * uint64_t(k), E = uint64_t(L->n_experts);
    const int64_t inter = gate.rows;
    const BufferSlice id = stream_->input(ids, choices * sizeof(int32_t));
    const BufferSlice wt = stream_->input(weights, choices * sizeof(float));
    const BufferSlice miss = stream_->input(&expert_miss_, sizeof expert_miss_);
    const BufferSlice table = whole(L->table);

    // The grouping (expert_groups_*.comp). At most one partial tile per used expert beyond
    // the full ones: the worst-case grid of the GEMMs.
    const uint64_t max_tiles = (choices + kTileTokens - 1) / kTileTokens + std::min(E, choices);
    const BufferSlice ranks = stream_->device_scratch(choices * 4), counts = stream_->device_scratch((E + 1) * 4);
    const BufferSlice offsets = stream_->device_scratch((E + 2) * 4);
    const BufferSlice tiles_gate_up = stream_->device_scratch(max_tiles * 16);
    const BufferSlice tiles_down = stream_->device_scratch(max_tiles * 16);
    const BufferSlice rows = stream_->device_scratch(choices * 4), uses = stream_->device_scratch(choices * 8);
    const BufferSlice token_uses = stream_->device_scratch((n + 1) * 4);
    {
        const uint32_t push[2] = {uint32_t(choices), uint32_t(E)};
        stream_->dispatch(pipelines_->get("expert_groups_count", 3), {id, ranks, counts}, push, sizeof push,
                          uint32_t(E + 1));
    }
    {
        const uint32_t push[4] = {uint32_t(E), uint32_t(max_tiles), uint32_t(gate.bytes / 4), uint32_t(down.bytes / 4)};
        stream_->dispatch(pipelines_->get("expert_groups_tiles", 5), {counts, table, offsets, tiles_gate_up, tiles_down},
                          push, sizeof push, 1);
    }
    {
        const uint32_t push[4] = {uint32_t(n), uint32_t(k), uint32_t(E), uint32_t(layer)};
        stream_->dispatch(pipelines_->get("expert_groups_scatter", 9),
                          {id, wt, ranks, offsets, table, rows, uses, token_uses, miss}, push, sizeof push,
                          uint32_t((n + 63) / 64));
    }

    // The experts, as routed_swiglu_grouped records them (gate and up lie in two stacks, so
    // they are two GEMMs and a silu_mul).
    const BufferSlice whole_h = stream_->input(h, n * uint64_t(hidden) * sizeof(float));
    const BufferSlice x = record_gather_rows(whole_h, rows, size_t(choices), hidden);
    const BufferSlice g = stream_->device_scratch(choices * uint64_t(inter) * sizeof(float));
    const BufferSlice u = stream_->device_scratch(choices * uint64_t(inter) * sizeof(float));
    const BufferSlice y = stream_->device_scratch(choices * uint64_t(hidden) * sizeof(float));
    const WeightView gate_shape{gate.dtype, nullptr, gate.rows, gate.cols};
    const WeightView down_shape{down.dtype, nullptr, down.rows, down.cols};
    record_gemm_grouped_table(gate_shape, whole(gate.stack), tiles_gate_up, size_t(max_tiles), x, g);
    record_gemm_grouped_table(gate_shape, whole(up.stack), tiles_gate_up, size_t(max_tiles), x, u);
    record_silu_mul(g, u, g, int64_t(choices) * inter);
    record_gemm_grouped_table(down_shape, whole(down.stack), tiles_down, size_t(max_tiles), g, y);

    // out is overwritten: zeroed on the device, not uploaded from host memory.
    const BufferSlice os = stream_->output_buffer(n * uint64_t(hidden) * sizeof(float));
    stream_->fill_zero(os);
    record_combine(y, uses, token_uses, os, n_tokens, hidden);
    stream_->output(os, out, os.size);
    stream_->output(miss, &expert_miss_, sizeof expert_miss_);
    submit();
    stream_->kick();
    check_expert_misses();
}

}  // namespace mst
