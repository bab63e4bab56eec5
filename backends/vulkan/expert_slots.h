// The experts of resident layers stacked per part, with a device table of each expert's
// slot (docs/device_graph.md, "One submission per resident decode step"). A layer's gate
// parts live in one buffer, slot s at s * part_bytes, likewise up and down, so that a
// shader reaches the expert the router chose on the device as table[id] * part_bytes
// (shaders/matvec_id.comp). An expert's slot is its index; the table says -1 for an
// expert that was not provided. Stacks are never evicted: they are made only when the GPU
// expert budget holds the layer (WeightResidency counts them against it), and the host
// path's expert lookups of a stacked layer read the stack too, so no expert is on the
// device twice.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backends/device_experts.h"
#include "backends/vulkan/command_stream.h"

namespace mst {

class ExpertSlots {
public:
    struct Part {
        DType dtype = DType::F32;
        int64_t rows = 0, cols = 0;
        uint64_t bytes = 0;  // one expert's part, the slot stride
        VulkanBuffer stack;
    };
    struct Layer {
        int32_t n_experts = 0;
        Part parts[3];  // gate, up, down
        std::vector<int32_t> slots;  // the host's copy of `table`
        int32_t missing = 0;         // entries of -1
        VulkanBuffer table;
    };

    // Why the id kernels cannot take the set (types, shapes, experts that differ), or ""
    // when they can. Checks the provided experts only.
    static std::string unsupported(const SwigluExpertSet &set);
    // Device bytes the set's stacks and table take (zero when the layer has them already).
    uint64_t bytes_needed(const SwigluExpertSet &set) const;
    // Make the stacks (first time) and upload the provided experts not there yet; the set
    // must be supported and, for a stacked layer, have its shapes.
    void add(const VulkanContext &ctx, CommandStream &stream, const SwigluExpertSet &set);
    const Layer *find(int64_t layer) const;
    // The stacked copy of the expert part `w` names by its expert_key, when there is one.
    bool lookup(const WeightView &w, BufferSlice &out) const;

private:
    std::map<int64_t, Layer> layers_;
    uint64_t align_ = 1;  // the device's storage-buffer offset alignment (for lookup's slices)
};

}  // namespace mst
