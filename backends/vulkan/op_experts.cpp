// A group of routed SwiGLU experts in one submission: every expert's gate and up
// products side by side, then every silu_mul, then every down product, then one pass that
// adds the weighted outputs into each token's row in expert order (shaders/combine.comp),
// the order the CPU backend adds them in. The experts' token rows are gathered on the
// device in expert order (shaders/gather_rows.comp), so a prefill's experts are grouped
// GEMMs over contiguous slices (op_gemm.cpp) and h never goes through the host.
//
// A streamed layer's experts (some missed in the GPU expert cache, their copies on the
// transfer lane) are recorded so that copies and compute overlap (docs/device_graph.md,
// "Hits first, each miss on its own copies"): each missed expert's copies are submitted
// as soon as it is looked up, signalling a lane value of its own; the hits' products go
// first, in a command buffer that waits for no copy; each missed expert's products follow
// in a command buffer of their own that waits for its copies only. Every product writes the
// same rows as before and the combine adds them in expert order, so the results are the
// same bit for bit (MST_VULKAN_STREAM_OVERLAP=0: one command buffer behind all copies).
// MST_VULKAN_STREAM_GROUP=N takes N missed experts per lane batch and per command buffer
// instead of one (fewer submissions, less overlap).
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backends/vulkan/env_switch.h"
#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"
#include "core/log.h"

namespace mst {

void VulkanBackend::configure_stream_overlap_from_environment() {
    stream_overlap_ = env_switch("MST_VULKAN_STREAM_OVERLAP", stream_overlap_,
                                 "a streamed layer's hits computed first and each miss behind its own copies",
                                 "a streamed layer's products behind all of its copies");
    if (!stream_overlap_)
        log(MST_LOG_INFO, "vulkan: streamed experts' products wait for all copies (MST_VULKAN_STREAM_OVERLAP=0)");
    if (const char *env = std::getenv("MST_VULKAN_STREAM_GROUP"); env && *env) {
        const std::string v = env;
        uint32_t n = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || end != v.data() + v.size() || n == 0)
            fail(MST_ERR_INVALID_ARGUMENT,
                 "MST_VULKAN_STREAM_GROUP='{}': expected a count of missed experts (1 or more) per lane batch and "
                 "per command buffer of their products",
                 v);
        set_stream_group(n);
    }
}

void VulkanBackend::set_stream_group(uint32_t misses) {
    if (misses == 0) fail(MST_ERR_INVALID_ARGUMENT, "vulkan: a stream group of 0 missed experts");
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    stream_group_ = misses;
}

void VulkanBackend::routed_swiglu(const float *h, float *out, int64_t n_tokens, int64_t hidden,
                                  const SwigluExpertUse *experts, size_t n_experts) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    const int64_t total = check_routed_swiglu_params(h, out, n_tokens, hidden, experts, n_experts);
    if (total == 0) return;
    if (routed_swiglu_grouped(h, out, n_tokens, hidden, experts, n_experts, total)) return;  // op_experts_grouped.cpp

    // Weights first: their uploads must precede the group of independent products.
    struct Plan {
        DeviceWeight gate, up, down;
        BufferSlice x, g, u, y;
        int64_t row0;
        uint64_t gather0 = 0;  // its first row among the gathered ones (when not all_tokens)
    };
    std::vector<Plan> plans(n_experts);
    const BufferSlice whole_h = stream_->input(h, uint64_t(n_tokens * hidden) * sizeof(float));
    const uint64_t align = std::max<uint64_t>(context().properties().limits.minStorageBufferOffsetAlignment, 1);
    std::vector<uint32_t> gather;  // rows of h in the order of `gathered`
    std::vector<size_t> gathered;  // experts whose x is a slice of the gathered rows
    // Every expert's gate and up rows side by side in two buffers, so that one silu_mul
    // dispatch covers the group (a decode layer had 8, each a dispatch to record and
    // start), when the experts share their width and each slice starts where the device
    // allows; else a pair of buffers per expert.
    int64_t inter_all = -1;
    bool side_by_side = true;
    for (size_t e = 0, r = 0; e < n_experts; r += size_t(experts[e].n), ++e) {
        if (experts[e].n == 0) continue;
        if (inter_all < 0) inter_all = experts[e].gate.rows;
        side_by_side = side_by_side && experts[e].gate.rows == inter_all && uint64_t(r * inter_all * 4) % align == 0;
    }
    BufferSlice g_all, u_all;
    if (side_by_side) {
        g_all = stream_->device_scratch(uint64_t(total * inter_all) * sizeof(float));
        u_all = stream_->device_scratch(uint64_t(total * inter_all) * sizeof(float));
    }
    // Experts with a part copied on the transfer lane by this call (only tracked when the
    // overlap applies: copies on a lane of their own, inside a batch that kicks).
    const bool overlap = stream_overlap_ && stream_->transfer_lane() && stream_->in_batch();
    std::vector<char> missed(n_experts, 0);
    size_t n_missed = 0;
    int64_t row = 0;
    for (size_t e = 0; e < n_experts; ++e) {
        const SwigluExpertUse &u = experts[e];
        Plan &p = plans[e];
        p.row0 = row;
        row += u.n;
        if (u.n == 0) continue;
        const uint64_t lane_commands = stream_->transfer().commands();
        p.gate = residency_->get(*stream_, u.gate);
        p.up = residency_->get(*stream_, u.up);
        p.down = residency_->get(*stream_, u.down);
        if (overlap && stream_->transfer().commands() != lane_commands) {
            missed[e] = 1;
            // A group's copies start as soon as its last expert is looked up, a lane value of their own.
            if (++n_missed % stream_group_ == 0) stream_->start_transfers();
        }
        const int64_t inter = u.gate.rows;
        // An expert that every token uses in order (each expert of a decode step) reads h
        // itself, sent once; others get their rows gathered.
        bool all_tokens = u.n == n_tokens;
        for (int64_t i = 0; i < u.n && all_tokens; ++i) all_tokens = u.tokens[i] == i;
        if (all_tokens) {
            p.x = whole_h;
        } else {
            p.gather0 = gather.size();
            for (int64_t i = 0; i < u.n; ++i) gather.push_back(uint32_t(u.tokens[i]));
            gathered.push_back(e);
        }
        const uint64_t bytes = uint64_t(u.n * inter) * sizeof(float);
        if (side_by_side) {
            const uint64_t at = uint64_t(p.row0 * inter) * sizeof(float);
            p.g = BufferSlice{g_all.buffer, g_all.offset + at, bytes, g_all.mapped ? g_all.mapped + at : nullptr};
            p.u = BufferSlice{u_all.buffer, u_all.offset + at, bytes, u_all.mapped ? u_all.mapped + at : nullptr};
        } else {
            p.g = stream_->device_scratch(bytes);
            p.u = stream_->device_scratch(bytes);
        }
    }
    if (!gather.empty()) {
        const uint64_t row_bytes = uint64_t(hidden) * sizeof(float);
        const BufferSlice xs = record_gather_rows(whole_h, gather, hidden);
        for (size_t e : gathered) {
            Plan &p = plans[e];
            const uint64_t offset = p.gather0 * row_bytes, bytes = uint64_t(experts[e].n) * row_bytes;
            p.x = BufferSlice{xs.buffer, xs.offset + offset, bytes, nullptr};
            if (p.x.offset % align != 0) {  // a slice the device cannot bind: its own copy
                const BufferSlice own = stream_->device_scratch(bytes);
                stream_->copy(p.x, own, bytes);
                p.x = own;
            }
        }
    }
    // Every expert's y rows in one buffer, row r of it at r * hidden.
    const BufferSlice y = stream_->device_scratch(uint64_t(total * hidden) * sizeof(float));
    for (size_t e = 0; e < n_experts; ++e) {
        Plan &p = plans[e];
        if (experts[e].n == 0) continue;
        // A slice per expert when its offset suits the device; else its own buffer.
        const uint64_t offset = uint64_t(p.row0 * hidden) * sizeof(float);
        if ((y.offset + offset) % align == 0)
            p.y = BufferSlice{y.buffer, y.offset + offset, uint64_t(experts[e].n * hidden) * sizeof(float), nullptr};
        else
            p.y = BufferSlice{};
    }

    std::vector<size_t> unaligned;
    auto record_down = [&](size_t e) {
        if (plans[e].y.buffer == VK_NULL_HANDLE) {
            plans[e].y = stream_->device_scratch(uint64_t(experts[e].n * hidden) * sizeof(float));
            unaligned.push_back(e);
        }
        record_matmul(experts[e].down, plans[e].down, plans[e].g, plans[e].y, experts[e].n);
    };
    if (n_missed > 0) {
        // Hits first, then each miss in the order its copies were submitted, a kick between
        // them: a command buffer waits on the lane for the copies its products read, so the
        // hits wait for none and miss j for its own (and, through the kick's barrier, for
        // the products before it, which have run by then). SiLU per expert: the same
        // elementwise op on the same slices as the one dispatch over all of them.
        stream_->start_transfers();  // the last group's, when it is not full
        bool recorded = false;
        size_t misses_recorded = 0;
        for (int pass = 0; pass < 2; ++pass)
            for (size_t e = 0; e < n_experts; ++e) {
                if (experts[e].n == 0 || missed[e] != pass) continue;
                // A kick before each group of misses (stream_group_ of them, as their lane
                // batches), unless nothing is recorded before it.
                if (pass == 1 && misses_recorded++ % stream_group_ == 0 && recorded) stream_->kick(false);
                record_matmul(experts[e].gate, plans[e].gate, plans[e].x, plans[e].g, experts[e].n);
                record_matmul(experts[e].up, plans[e].up, plans[e].x, plans[e].u, experts[e].n);
                record_silu_mul(plans[e].g, plans[e].u, plans[e].g, experts[e].n * experts[e].gate.rows);
                record_down(e);
                recorded = true;
            }
    } else {
        for (size_t e = 0; e < n_experts; ++e) {
            if (experts[e].n == 0) continue;
            record_matmul(experts[e].gate, plans[e].gate, plans[e].x, plans[e].g, experts[e].n);
            record_matmul(experts[e].up, plans[e].up, plans[e].x, plans[e].u, experts[e].n);
        }
        if (side_by_side)
            record_silu_mul(g_all, u_all, g_all, total * inter_all);
        else
            for (size_t e = 0; e < n_experts; ++e)
                if (experts[e].n) record_silu_mul(plans[e].g, plans[e].u, plans[e].g, experts[e].n * experts[e].gate.rows);
        for (size_t e = 0; e < n_experts; ++e)
            if (experts[e].n) record_down(e);
    }
    for (size_t e : unaligned)
        stream_->copy(plans[e].y, BufferSlice{y.buffer, y.offset + uint64_t(plans[e].row0 * hidden) * 4, 0, nullptr},
                      uint64_t(experts[e].n * hidden) * 4);

    record_routed_combine(y, out, n_tokens, hidden, experts, n_experts, total);
}

BufferSlice VulkanBackend::record_gather_rows(const BufferSlice &h, const std::vector<uint32_t> &gather,
                                              int64_t hidden) {
    return record_gather_rows(h, stream_->input(gather.data(), gather.size() * sizeof(uint32_t)), gather.size(),
                              hidden);
}

BufferSlice VulkanBackend::record_gather_rows(const BufferSlice &h, const BufferSlice &rows, size_t n_rows,
                                              int64_t hidden) {
    const BufferSlice xs = stream_->device_scratch(n_rows * uint64_t(hidden) * sizeof(float));
    // At most 65535 rows a dispatch (workgroups along y).
    for (size_t r0 = 0; r0 < n_rows; r0 += 65535) {
        const uint32_t push[3] = {uint32_t(n_rows), uint32_t(hidden), uint32_t(r0)};
        stream_->dispatch(pipelines_->get("gather_rows", 3), {h, rows, xs}, push, sizeof push,
                          uint32_t((hidden + 255) / 256), uint32_t(std::min<size_t>(65535, n_rows - r0)));
    }
    return xs;
}

void VulkanBackend::record_routed_combine(const BufferSlice &y, float *out, int64_t n_tokens, int64_t hidden,
                                          const SwigluExpertUse *experts, size_t n_experts, int64_t total) {
    // Each token's uses in expert order: (row of y, weight bits), grouped by token; expert
    // e's rows of y follow those of the experts before it.
    std::vector<uint32_t> offsets(size_t(n_tokens) + 1, 0);
    for (size_t e = 0; e < n_experts; ++e)
        for (int64_t i = 0; i < experts[e].n; ++i) ++offsets[size_t(experts[e].tokens[i]) + 1];
    for (size_t t = 0; t < size_t(n_tokens); ++t) offsets[t + 1] += offsets[t];
    std::vector<uint32_t> uses(size_t(total) * 2), fill(offsets.begin(), offsets.end() - 1);
    for (size_t e = 0, row0 = 0; e < n_experts; row0 += size_t(experts[e].n), ++e)
        for (int64_t i = 0; i < experts[e].n; ++i) {
            const uint32_t slot = fill[size_t(experts[e].tokens[i])]++;
            uses[2 * slot] = uint32_t(row0 + size_t(i));
            std::memcpy(&uses[2 * slot + 1], &experts[e].weights[i], 4);
        }
    const BufferSlice us = stream_->input(uses.data(), uses.size() * 4);
    const BufferSlice offs = stream_->input(offsets.data(), offsets.size() * 4);
    const BufferSlice os = stream_->input_to_modify(out, uint64_t(n_tokens * hidden) * sizeof(float));
    record_combine(y, us, offs, os, n_tokens, hidden);
    stream_->output(os, out, os.size);
    submit();
    // Inside a step's batch: the experts start while the host records the next layer.
    stream_->kick();
}


void VulkanBackend::record_combine(const BufferSlice &y, const BufferSlice &uses, const BufferSlice &offsets,
                                   const BufferSlice &out, int64_t n_tokens, int64_t hidden) {
    if (n_tokens > 65535) fail(MST_ERR_UNSUPPORTED, "routed_swiglu: {} tokens in one call (at most 65535)", n_tokens);
    const uint32_t push[2] = {uint32_t(n_tokens), uint32_t(hidden)};
    stream_->dispatch(pipelines_->get("combine", 4), {y, uses, offsets, out}, push, sizeof push,
                      uint32_t((hidden + 255) / 256), uint32_t(n_tokens));
}

}  // namespace mst
