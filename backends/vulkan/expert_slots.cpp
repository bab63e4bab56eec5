#include "backends/vulkan/expert_slots.h"

#include <fmt/format.h>

#include <algorithm>

#include "backends/vulkan/vulkan_backend.h"
#include "backends/vulkan/weight_residency.h"

namespace mst {
namespace {

const char *const kPartNames[3] = {"gate", "up", "down"};

const WeightView &part_view(const SwigluExpertSet &set, int p, int32_t e) {
    return p == 0 ? set.gate[e] : p == 1 ? set.up[e] : set.down[e];
}

bool provided(const SwigluExpertSet &set, int32_t e) { return set.gate[e].data != nullptr; }

// An expert_key's (layer, expert, part), make_expert_key's inverse.
void split_key(uint64_t key, int64_t &layer, int64_t &expert, int &part) {
    layer = int64_t(key >> 40) - 1;
    expert = int64_t((key >> 8) & 0xffffffffu);
    part = int(key & 0xffu) - 1;
}

}  // namespace

std::string ExpertSlots::unsupported(const SwigluExpertSet &set) {
    if (set.n_experts < 1 || !set.gate || !set.up || !set.down) return "no experts";
    if (set.n_experts > 65535) return fmt::format("{} experts (the miss flag names at most 65535)", set.n_experts);
    int32_t first = -1;
    for (int32_t e = 0; e < set.n_experts; ++e) {
        if (!provided(set, e)) continue;
        if (first < 0) first = e;
        for (int p = 0; p < 3; ++p) {
            const WeightView &w = part_view(set, p, e), &f = part_view(set, p, first);
            if (!w.data) return fmt::format("expert {}'s {} part has no data", e, kPartNames[p]);
            if (w.dtype != f.dtype || w.rows != f.rows || w.cols != f.cols)
                return fmt::format("expert {}'s {} part differs from expert {}'s", e, kPartNames[p], first);
            if (!matvec_shader(w.dtype, w.cols))
                return fmt::format("{} part: {} rows of {} columns (the id kernels take f32, f16, bf16, q8, q4 rows "
                                   "of whole 16-byte units)",
                                   kPartNames[p], dtype_name(w.dtype), w.cols);
        }
    }
    if (first < 0) return "no expert provided";
    const WeightView &g = set.gate[first], &u = set.up[first], &d = set.down[first];
    if (u.rows != g.rows || u.cols != g.cols || d.cols != g.rows || d.rows != g.cols)
        return fmt::format("gate {}x{}, up {}x{}, down {}x{} do not make a SwiGLU expert", g.rows, g.cols, u.rows, u.cols,
                           d.rows, d.cols);
    return "";
}

uint64_t ExpertSlots::bytes_needed(const SwigluExpertSet &set) const {
    if (layers_.count(set.layer)) return 0;
    uint64_t bytes = uint64_t(set.n_experts) * 4;
    for (int32_t e = 0; e < set.n_experts; ++e) {
        if (!provided(set, e)) continue;
        for (int p = 0; p < 3; ++p) bytes += uint64_t(set.n_experts) * WeightResidency::data_bytes(part_view(set, p, e));
        break;
    }
    return bytes;
}

void ExpertSlots::add(const VulkanContext &ctx, CommandStream &stream, const SwigluExpertSet &set) {
    align_ = std::max<uint64_t>(ctx.properties().limits.minStorageBufferOffsetAlignment, 1);
    auto [it, fresh] = layers_.try_emplace(set.layer);
    Layer &L = it->second;
    if (fresh) {
        int32_t first = 0;
        while (!provided(set, first)) ++first;
        L.n_experts = set.n_experts;
        for (int p = 0; p < 3; ++p) {
            const WeightView &w = part_view(set, p, first);
            Part &part = L.parts[p];
            part.dtype = w.dtype;
            part.rows = w.rows;
            part.cols = w.cols;
            part.bytes = WeightResidency::data_bytes(w);
            part.stack = VulkanBuffer(ctx, part.bytes * uint64_t(set.n_experts), MemoryKind::Device);
        }
        L.slots.assign(size_t(set.n_experts), -1);
        L.missing = set.n_experts;
        L.table = VulkanBuffer(ctx, uint64_t(set.n_experts) * 4, MemoryKind::Device);
    }
    bool changed = fresh;
    for (int32_t e = 0; e < set.n_experts && e < L.n_experts; ++e) {
        if (L.slots[size_t(e)] >= 0 || !provided(set, e)) continue;
        for (int p = 0; p < 3; ++p) {
            const Part &part = L.parts[p];
            const BufferSlice stack = whole(part.stack);
            stream.upload(part_view(set, p, e).data, part.bytes,
                          BufferSlice{stack.buffer, part.bytes * uint64_t(e), part.bytes,
                                      stack.mapped ? stack.mapped + part.bytes * uint64_t(e) : nullptr});
        }
        L.slots[size_t(e)] = e;
        --L.missing;
        changed = true;
    }
    if (changed) stream.upload(L.slots.data(), L.slots.size() * 4, whole(L.table));
}

const ExpertSlots::Layer *ExpertSlots::find(int64_t layer) const {
    auto it = layers_.find(layer);
    return it == layers_.end() ? nullptr : &it->second;
}

bool ExpertSlots::lookup(const WeightView &w, BufferSlice &out) const {
    if (w.expert_key == 0 || layers_.empty()) return false;
    int64_t layer, expert;
    int part;
    split_key(w.expert_key, layer, expert, part);
    const Layer *L = find(layer);
    if (!L || part < 0 || part > 2 || expert >= L->n_experts || L->slots[size_t(expert)] < 0) return false;
    const Part &p = L->parts[part];
    if (w.dtype != p.dtype || w.rows != p.rows || w.cols != p.cols) return false;
    const uint64_t at = p.bytes * uint64_t(L->slots[size_t(expert)]);
    if (at % align_ != 0) return false;  // a slice the device cannot bind: the expert cache's copy
    out = BufferSlice{p.stack.buffer(), at, p.bytes, p.stack.mapped() ? p.stack.mapped() + at : nullptr};
    return true;
}

}  // namespace mst
