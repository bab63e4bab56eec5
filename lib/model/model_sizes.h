// Parameter and byte counts of a checkpoint split into resident weights and routed
// experts, for Model::sizes().
#pragma once

#include <cstdint>
#include <vector>

#include "experts/expert_layout.h"
#include "format/checkpoint.h"
#include "model/model.h"

namespace mst {

// Routed experts are the byte ranges in `layouts` (per layer, per expert); every other
// tensor of the checkpoint counts as dense, whatever its name. params_per_expert is the
// architecture's count for one expert (stored parts need not be one parameter per
// element: MXFP4 packs two in a byte). resident_bytes is what the model holds in memory.
ModelSizes count_model_sizes(const Checkpoint &checkpoint, const std::vector<std::vector<ExpertLayout>> &layouts,
                             uint64_t params_per_expert, uint64_t resident_bytes);

}  // namespace mst
