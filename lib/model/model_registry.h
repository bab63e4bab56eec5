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

namespace mst {

using ExpertStoreFactory = std::function<std::unique_ptr<ExpertStore>(std::vector<std::vector<ExpertLayout>>)>;

struct ModelBuildContext {
    const ModelConfig &config;
    const Checkpoint &checkpoint;
    Backend &backend;
    ExpertStoreFactory make_expert_store;
};

std::vector<std::string> supported_model_types();

// Build the architecture for ctx.config.model_type, reading its resident weights.
// Unknown model_type -> MST_ERR_UNSUPPORTED listing the supported ones.
std::unique_ptr<Model> build_model(const ModelBuildContext &ctx);

}  // namespace mst
