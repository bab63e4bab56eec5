// Every tensor and expert part an architecture reads, learnt from the architecture
// itself rather than from a list: it is built over a checkpoint that has no files and
// invents each tensor the moment the architecture asks for it, with the shape asked for
// (ResidentWeights and the expert locators always say the shape they expect). So
// `moestream synth` follows every architecture the loader supports, in the form the
// loader looks for first, without knowing any of them.
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
    TensorInfo info;  // BF16, in the order the architecture asked for it
    // How the architecture said it uses a 2-D weight (absent for 1-D or 3-D tensors and
    // for architectures that record no use): only a Matrix may be stored as Q8.
    std::optional<WeightUse> use;
};

struct DiscoveredShapes {
    std::vector<DiscoveredTensor> resident;               // every non-expert tensor
    std::vector<std::vector<ExpertLayout>> experts;       // [layer][expert]: parts, BF16
};

// Builds `config`'s architecture through the model registry over an inventing
// checkpoint. Optional tensors (found with find(), never required) are left out, so
// the result is the architecture's minimal form. Throws what building the model throws:
// MST_ERR_UNSUPPORTED for an unknown model_type, MST_ERR_BAD_FORMAT for a missing or bad
// config field. Resident buffers are allocated but never written, so even a model whose
// resident weights exceed RAM costs only address space here.
DiscoveredShapes discover_shapes(const ModelConfig &config);

}  // namespace mst
