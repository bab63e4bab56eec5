// RoPE inverse frequencies for a config's rope type, computed in float32 exactly as the
// reference does, so that positions rotate identically.
#pragma once

#include <vector>

#include "backends/backend.h"
#include "format/model_config.h"

namespace mst {

struct RopeTable {
    std::vector<float> inv_freq;
    RopeParams params() const;
    int32_t rotary_dim = 0;
    float attention_factor = 1.0f;
    bool interleaved = false;
};

// Frequencies for `rotary_dim` dims. Supports rope types "default", "linear" and "yarn";
// others are MST_ERR_UNSUPPORTED naming the type.
RopeTable make_rope_table(const ModelConfig &config, int32_t rotary_dim);

}  // namespace mst
