// A batch's routed SwiGLU experts as grouped GEMMs: every expert's token rows gathered on
// the device in expert order (as routed_swiglu does), then one dispatch per product for
// each run of experts whose weights share a device buffer (the GPU expert cache keeps
// experts of one size in slots of a few large buffers): gate and up together with SwiGLU
// where each expert's two lie in one buffer (else a dispatch each and one silu_mul), then
// down, then the combine. A 512-token prefill layer of the Qwen3-30B-A3B shape thus records
// about 18 GEMM dispatches instead of 3 x 128, each with hundreds of workgroups, not 12-32.
#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "backends/vulkan/env_switch.h"
#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"
#include "core/log.h"

namespace mst {
namespace {

// An expert's weights are addressed in words from the start of the bound range, and the
// GEMM loads them as 16-byte vectors: their offset from it must be a multiple of 16.
constexpr uint64_t kWeightAlign = 16;

}  // namespace

void VulkanBackend::configure_grouped_experts_from_environment() {
    grouped_experts_ = env_switch("MST_VULKAN_GROUPED_EXPERTS", grouped_experts_, "grouped expert GEMMs",
                                  "a product per expert");
    fused_swiglu_ = env_switch("MST_VULKAN_FUSED_SWIGLU", fused_swiglu_, "gate, up and SwiGLU in one pass", "apart");
    if (!grouped_experts_) log(MST_LOG_INFO, "vulkan: a batch's experts take a product each (MST_VULKAN_GROUPED_EXPERTS=0)");
}

bool VulkanBackend::routed_swiglu_grouped(const float *h, float *out, int64_t n_tokens, int64_t hidden,
                                          const SwigluExpertUse *experts, size_t n_experts, int64_t total) {
    if (!grouped_experts_ || n_tokens < gemm_min_tokens_) return false;
    // Every used expert of one shape and type per part, each type one the GEMM takes.
    const SwigluExpertUse *first = nullptr;
    for (size_t e = 0; e < n_experts; ++e) {
        const SwigluExpertUse &u = experts[e];
        if (u.n == 0) continue;
        if (!first) first = &u;
        auto same = [](const WeightView &a, const WeightView &b) {
            return a.dtype == b.dtype && a.rows == b.rows && a.cols == b.cols;
        };
        if (!same(u.gate, first->gate) || !same(u.up, first->gate) || !same(u.down, first->down)) return false;
    }
    if (!first || first->down.rows != hidden || first->down.cols != first->gate.rows) return false;
    if (gemm_shader(first->gate.dtype, true).empty() || gemm_shader(first->down.dtype, true).empty()) return false;
    const int64_t inter = first->gate.rows;

    // Weights first (uploads of missing experts precede the products), then h and its
    // rows in expert order.
    std::vector<ExpertPart> parts[3];  // gate, up, down
    std::vector<uint32_t> gather;
    gather.reserve(size_t(total));
    std::vector<uint64_t> row0(n_experts);
    for (size_t e = 0, row = 0; e < n_experts; row += size_t(experts[e].n), ++e) {
        row0[e] = row;
        const SwigluExpertUse &u = experts[e];
        if (u.n == 0) continue;
        const WeightView *views[3] = {&u.gate, &u.up, &u.down};
        for (int k = 0; k < 3; ++k) {
            const DeviceWeight d = residency_->get(*stream_, *views[k]);
            parts[k].push_back(ExpertPart{d.data.buffer, d.data.offset, d.data.size, e});
        }
        for (int64_t i = 0; i < u.n; ++i) gather.push_back(uint32_t(u.tokens[i]));
    }
    const BufferSlice whole_h = stream_->input(h, uint64_t(n_tokens * hidden) * sizeof(float));
    const BufferSlice x = record_gather_rows(whole_h, gather, hidden);
    const BufferSlice g = stream_->device_scratch(uint64_t(total * inter) * sizeof(float));
    const BufferSlice y = stream_->device_scratch(uint64_t(total * hidden) * sizeof(float));

    // One dispatch per run of experts in one buffer whose offsets from the run's first
    // are whole 16-byte units (in offset order, so the bound range is [first, last end)).
    const uint64_t max_range = context().properties().limits.maxStorageBufferRange;
    auto record_part = [&](std::vector<ExpertPart> &uses, const WeightView &shape, const BufferSlice &in,
                           const BufferSlice &result) {
        std::sort(uses.begin(), uses.end(), [](const ExpertPart &a, const ExpertPart &b) {
            return std::tie(a.buffer, a.offset) < std::tie(b.buffer, b.offset);
        });
        for (size_t i = 0; i < uses.size();) {
            const ExpertPart &base = uses[i];
            std::vector<ExpertSlice> slices;
            uint64_t end = base.offset;
            size_t j = i;
            for (; j < uses.size() && uses[j].buffer == base.buffer; ++j) {
                const uint64_t rel = uses[j].offset - base.offset;
                if (rel % kWeightAlign != 0 || rel / 4 > UINT32_MAX || uses[j].offset + uses[j].bytes - base.offset > max_range)
                    break;
                slices.push_back(ExpertSlice{uint32_t(rel / 4), row0[uses[j].expert], uint64_t(experts[uses[j].expert].n)});
                end = std::max(end, uses[j].offset + uses[j].bytes);
            }
            record_gemm_grouped(shape, BufferSlice{base.buffer, base.offset, end - base.offset, nullptr}, slices, in,
                                result);
            i = j;
        }
    };
    if (!record_fused_gate_up(parts[0], parts[1], first->gate, x, g, row0, experts, max_range)) {
        const BufferSlice up = stream_->device_scratch(uint64_t(total * inter) * sizeof(float));
        record_part(parts[0], first->gate, x, g);
        record_part(parts[1], first->up, x, up);
        record_silu_mul(g, up, g, total * inter);
    }
    record_part(parts[2], first->down, g, y);
    record_routed_combine(y, out, n_tokens, hidden, experts, n_experts, total);
    return true;
}

bool VulkanBackend::record_fused_gate_up(const std::vector<ExpertPart> &gate, const std::vector<ExpertPart> &up,
                                         const WeightView &shape, const BufferSlice &x, const BufferSlice &out,
                                         const std::vector<uint64_t> &row0, const SwigluExpertUse *experts,
                                         uint64_t max_range) {
    if (!fused_swiglu_) return false;
    // Every expert's gate and up weights in one buffer, in the same 16-byte phase.
    struct Pair {
        const ExpertPart *g, *u;
        uint64_t lo, hi;
    };
    std::vector<Pair> pairs(gate.size());
    for (size_t i = 0; i < gate.size(); ++i) {
        const ExpertPart &g = gate[i], &u = up[i];
        if (g.buffer != u.buffer || g.offset % kWeightAlign != u.offset % kWeightAlign) return false;
        pairs[i] = Pair{&g, &u, std::min(g.offset, u.offset), std::max(g.offset + g.bytes, u.offset + u.bytes)};
    }
    std::sort(pairs.begin(), pairs.end(),
              [](const Pair &a, const Pair &b) { return std::tie(a.g->buffer, a.lo) < std::tie(b.g->buffer, b.lo); });
    for (size_t i = 0; i < pairs.size();) {
        const uint64_t base = pairs[i].lo;
        std::vector<ExpertSlice> slices;
        uint64_t end = base;
        size_t j = i;
        for (; j < pairs.size() && pairs[j].g->buffer == pairs[i].g->buffer; ++j) {
            const Pair &p = pairs[j];
            if ((p.lo - base) % kWeightAlign != 0 || (p.hi - base) / 4 > UINT32_MAX || p.hi - base > max_range) break;
            slices.push_back(ExpertSlice{uint32_t((p.g->offset - base) / 4), row0[p.g->expert],
                                         uint64_t(experts[p.g->expert].n), uint32_t((p.u->offset - base) / 4)});
            end = std::max(end, p.hi);
        }
        record_gemm_grouped(shape, BufferSlice{pairs[i].g->buffer, base, end - base, nullptr}, slices, x, out, true);
        i = j;
    }
    return true;
}

}  // namespace mst
