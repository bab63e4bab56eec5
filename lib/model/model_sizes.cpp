#include "model/model_sizes.h"

#include <algorithm>
#include <tuple>

namespace mst {

ModelSizes count_model_sizes(const Checkpoint &checkpoint, const std::vector<std::vector<ExpertLayout>> &layouts,
                             uint64_t params_per_expert, uint64_t resident_bytes) {
    ModelSizes s;
    s.resident_bytes = resident_bytes;
    // Byte ranges of every expert part, sorted, to tell expert tensors from dense ones by
    // where they lie rather than by a naming convention.
    struct Range {
        uint32_t file;
        uint64_t begin, end;
    };
    std::vector<Range> ranges;
    for (const auto &layer : layouts) {
        if (layer.empty()) continue;
        ++s.n_moe_layers;
        for (const ExpertLayout &e : layer) {
            s.expert_bytes_total += e.nbytes();
            s.expert_bytes_each = std::max(s.expert_bytes_each, e.nbytes());
            s.n_params_total += params_per_expert;
            // A packed file's parts lie inside their blob, whose range is what the file holds.
            if (e.blob)
                ranges.push_back(Range{e.blob->file, e.blob->offset, e.blob->offset + e.blob->stored_bytes});
            else
                for (const ExpertMatrix &m : e.parts) ranges.push_back(Range{m.file, m.offset, m.offset + m.nbytes()});
        }
    }
    std::sort(ranges.begin(), ranges.end(),
              [](const Range &a, const Range &b) { return std::tie(a.file, a.begin) < std::tie(b.file, b.begin); });
    auto overlaps_expert = [&](const TensorInfo &t) {
        const uint64_t begin = t.offset, end = t.offset + t.nbytes;
        // Parts never overlap one another, so among the parts starting before `end` the
        // last one also ends last: the tensor overlaps an expert part iff that one ends
        // after `begin`.
        auto it = std::lower_bound(ranges.begin(), ranges.end(), Range{t.file_index, end, end},
                                   [](const Range &a, const Range &b) {
                                       return std::tie(a.file, a.begin) < std::tie(b.file, b.begin);
                                   });
        if (it == ranges.begin()) return false;
        const Range &prev = *(it - 1);
        return prev.file == t.file_index && prev.end > begin;
    };
    for (const TensorInfo &t : checkpoint.tensors())
        if (t.nbytes > 0 && !overlaps_expert(t)) s.n_params_dense += uint64_t(t.numel());
    s.n_params_per_expert = params_per_expert;
    s.n_params_total += s.n_params_dense;
    return s;
}

}  // namespace mst
