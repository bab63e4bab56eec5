// What `moestream info` (mst_model_get_info, mst_model_get_weight_type) says about a
// loaded model beyond its sizes: the tokenizer's kind, its end-of-sequence ids and the
// types its weights are stored in.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "format/checkpoint.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace mst {

struct WeightTypeCount {
    DType dtype = DType::F32;
    bool experts = false;  // routed expert parts (FP8 block scales among them); else the other tensors
    uint64_t tensors = 0;  // tensors, or expert parts
    uint64_t bytes = 0;
};

struct ModelDescription {
    std::string tokenizer_kind;
    std::vector<int32_t> eos_ids;  // distinct, ascending
    std::vector<WeightTypeCount> weight_types;
};

// `read`: the names of the checkpoint tensors the architecture looked at while it was
// built; tensors it never read (a vision tower, MTP heads) are not counted.
// `eos_ids`: every end-of-sequence id generation stops at (model/eos_tokens.h).
ModelDescription describe_model(const Checkpoint &checkpoint, const Tokenizer &tokenizer,
                                const std::vector<int32_t> &eos_ids, const ExpertStore &experts,
                                const std::set<std::string> &read);

}  // namespace mst
