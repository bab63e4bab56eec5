#include "model/model_description.h"

#include <algorithm>
#include <map>
#include <utility>

#include "experts/expert_store.h"

namespace mst {

ModelDescription describe_model(const Checkpoint &checkpoint, const Tokenizer &tokenizer,
                                const std::vector<int32_t> &eos_ids, const ExpertStore &experts,
                                const std::set<std::string> &read) {
    ModelDescription d;
    d.tokenizer_kind = tokenizer_kind_name(tokenizer.kind());
    d.eos_ids = eos_ids;

    std::map<std::pair<bool, DType>, WeightTypeCount> counts;
    const auto add = [&](bool expert, DType dtype, uint64_t bytes) {
        WeightTypeCount &c = counts[{expert, dtype}];
        c.dtype = dtype;
        c.experts = expert;
        ++c.tensors;
        c.bytes += bytes;
    };
    // Expert parts, and (in a checkpoint directory) the byte ranges of the tensors they lie in.
    std::map<uint32_t, std::vector<std::pair<uint64_t, uint64_t>>> expert_ranges;
    for (int l = 0; l < experts.n_layers(); ++l)
        for (int e = 0; e < experts.n_experts(l); ++e)
            for (const ExpertMatrix &m : experts.layout(l, e).parts) {
                add(true, m.dtype, m.nbytes());
                expert_ranges[m.file].emplace_back(m.offset, m.offset + m.nbytes());
            }
    for (auto &[file, ranges] : expert_ranges) std::sort(ranges.begin(), ranges.end());
    // A packed file's tensors are its resident ones (expert offsets are inside blobs).
    const bool packed = checkpoint.packed() != nullptr;
    for (const TensorInfo &t : checkpoint.tensors()) {
        if (!read.count(t.name)) continue;
        if (!packed) {
            const auto it = expert_ranges.find(t.file_index);
            if (it != expert_ranges.end()) {
                const auto &ranges = it->second;
                const auto after = std::upper_bound(ranges.begin(), ranges.end(),
                                                    std::make_pair(t.offset + t.nbytes, uint64_t(0)));
                if (after != ranges.begin() && std::prev(after)->second > t.offset) continue;  // holds expert parts
            }
        }
        add(false, t.dtype, t.nbytes);
    }
    for (const auto &[key, c] : counts) d.weight_types.push_back(c);
    return d;
}

}  // namespace mst
