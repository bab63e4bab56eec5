// Every tensor and expert part an architecture reads, learnt from the architecture
// itself rather than from a list: it is built over a checkpoint that has no files and
// invents each tensor the moment the architecture asks for it, with the shape asked for
// (ResidentWeights and the expert locators always say the shape they expect). Optional
// tensors and preferred forms that an architecture looks for with find() are there, as
// in the published checkpoints (DeepSeek's e_score_correction_bias, gpt-oss's MXFP4
// experts). So `moestream synth` follows every architecture the loader supports without
// knowing any of them.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "experts/expert_layout.h"
#include "format/model_config.h"
#include "format/safetensors.h"
#include "model/resident_weights.h"

namespace mst {

struct DiscoveredTensor {
    TensorInfo info;  // BF16 (U8 for MXFP4 blocks and scales), in the order required
    // How the architecture said it uses a 2-D weight (absent for 1-D or 3-D tensors and
    // for architectures that record no use): only a Matrix may be stored as Q8.
    std::optional<WeightUse> use;
};

struct DiscoveredShapes {
    std::vector<DiscoveredTensor> resident;               // every non-expert tensor
    std::vector<std::vector<ExpertLayout>> experts;       // [layer][expert]: parts, BF16 or U8
    // [layer][part]: the tensor that part of the layer's expert 0 lies in (every expert
    // of a layer has its parts in the same tensors), for choosing how to fill it.
    std::vector<std::vector<std::string>> part_tensors;
};

// Builds `config`'s architecture through the model registry over an inventing
// checkpoint. Throws what building the model throws:
// MST_ERR_UNSUPPORTED for an unknown model_type, MST_ERR_BAD_FORMAT for a missing or bad
// config field. Resident buffers are allocated but never written, so even a model whose
// resident weights exceed RAM costs only address space here.
DiscoveredShapes discover_shapes(const ModelConfig &config);

}  // namespace mst
