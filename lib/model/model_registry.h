// Architectures by config model_type: the one place that maps a checkpoint to its code.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "format/checkpoint.h"
#include "format/model_config.h"
#include "model/model.h"
#include "model/resident_weights.h"

namespace mst {

using ExpertStoreFactory = std::function<std::unique_ptr<ExpertStore>(std::vector<std::vector<ExpertLayout>>)>;
// An architecture's own search of a checkpoint's tensors for one layer's experts.
using ExpertLocator = std::function<std::vector<ExpertLayout>()>;

struct ModelBuildContext {
    const ModelConfig &config;
    const Checkpoint &checkpoint;
    Backend &backend;
    ExpertStoreFactory make_expert_store;
    // Pass to ResidentWeights: the converter learns from it which weights --dense q8 may
    // quantize. Empty when loading a model.
    WeightUseRecorder record_weight_use = {};

    // Layer `layer`'s routed experts: from the index of a packed file (blobs whose parts
    // are in the order the converter got from locate() when it wrote the file), else
    // from locate(). Throws MST_ERR_BAD_FORMAT naming the file and layer when a packed
    // file has no experts for the layer or experts with differing part counts.
    std::vector<ExpertLayout> expert_layouts(int64_t layer, const ExpertLocator &locate) const;
};

std::vector<std::string> supported_model_types();

// Build the architecture for ctx.config.model_type, reading its resident weights.
// Unknown model_type -> MST_ERR_UNSUPPORTED listing the supported ones.
std::unique_ptr<Model> build_model(const ModelBuildContext &ctx);

}  // namespace mst
