// A batch's routed SwiGLU experts as grouped GEMMs: every expert's token rows gathered on
// the device in expert order (as routed_swiglu does), then one dispatch per product (gate,
// up, down) for each group of experts whose weights share a device buffer (the GPU expert
// cache keeps experts of one size in slots of a few large buffers), the silu_mul of all of
// them in one dispatch, and the combine. A 512-token prefill of the Qwen3-30B-A3B shape
// thus records about 3 x (buffers) GEMM dispatches a layer instead of 3 x 128, each with
// thousands of workgroups rather than 12-32.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"
#include "core/log.h"

namespace mst {
namespace {

// An expert's weights are addressed in words from the start of the bound range, and the
// GEMM loads them as 16-byte vectors: their offset from it must be a multiple of 16.
constexpr uint64_t kWeightAlign = 16;

struct PartUse {
    VkBuffer buffer;
    uint64_t offset, bytes;
    size_t expert;
};

}  // namespace

void VulkanBackend::configure_grouped_experts_from_environment() {
    if (const char *env = std::getenv("MST_VULKAN_GROUPED_EXPERTS"); env && *env) {
        const std::string v = env;
        if (v != "0" && v != "1")
            fail(MST_ERR_INVALID_ARGUMENT,
                 "MST_VULKAN_GROUPED_EXPERTS='{}': expected 1 (grouped expert GEMMs) or 0 (a product per expert)", v);
        grouped_experts_ = v == "1";
    }
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
    std::vector<PartUse> parts[3];  // gate, up, down
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
            parts[k].push_back(PartUse{d.data.buffer, d.data.offset, d.data.size, e});
        }
        for (int64_t i = 0; i < u.n; ++i) gather.push_back(uint32_t(u.tokens[i]));
    }
    const BufferSlice whole_h = stream_->input(h, uint64_t(n_tokens * hidden) * sizeof(float));
    const BufferSlice x = record_gather_rows(whole_h, gather, hidden);
    const BufferSlice g = stream_->device_scratch(uint64_t(total * inter) * sizeof(float));
    const BufferSlice up = stream_->device_scratch(uint64_t(total * inter) * sizeof(float));
    const BufferSlice y = stream_->device_scratch(uint64_t(total * hidden) * sizeof(float));

    // One dispatch per run of experts in one buffer whose offsets from the run's first
    // are whole 16-byte units (in offset order, so the bound range is [first, last end)).
    const uint64_t max_range = context().properties().limits.maxStorageBufferRange;
    auto record_part = [&](std::vector<PartUse> &uses, const WeightView &shape, const BufferSlice &in,
                           const BufferSlice &result) {
        std::sort(uses.begin(), uses.end(), [](const PartUse &a, const PartUse &b) {
            return std::tie(a.buffer, a.offset) < std::tie(b.buffer, b.offset);
        });
        for (size_t i = 0; i < uses.size();) {
            const PartUse &base = uses[i];
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
    record_part(parts[0], first->gate, x, g);
    record_part(parts[1], first->up, x, up);
    record_silu_mul(g, up, g, total * inter);
    record_part(parts[2], first->down, g, y);
    record_routed_combine(y, out, n_tokens, hidden, experts, n_experts, total);
    return true;
}

}  // namespace mst
