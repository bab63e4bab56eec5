#include "model/rope_frequencies.h"

#include <cmath>

#include "core/error.h"

namespace mst {

RopeParams RopeTable::params() const {
    RopeParams p;
    p.rotary_dim = rotary_dim;
    p.inv_freq = inv_freq.data();
    p.attention_factor = attention_factor;
    p.interleaved = interleaved;
    return p;
}

RopeTable make_rope_table(const ModelConfig &config, int32_t rotary_dim) {
    if (rotary_dim <= 0 || rotary_dim % 2 != 0)
        fail(MST_ERR_BAD_FORMAT, "rotary dimension must be positive and even, got {}", rotary_dim);
    RopeTable table;
    table.rotary_dim = rotary_dim;
    const std::string &type = config.rope_scaling.type;
    float divisor = 1.0f;
    if (type == "linear") {
        divisor = float(config.rope_scaling.factor);
    } else if (type != "default") {
        fail(MST_ERR_UNSUPPORTED, "rope type '{}' is not supported for {}", type, config.model_type);
    }
    // base ** (2i / d) in float32, as the reference computes it.
    const float base = float(config.rope_theta);
    for (int32_t i = 0; i < rotary_dim; i += 2) {
        const float exponent = float(i) / float(rotary_dim);
        table.inv_freq.push_back(1.0f / std::pow(base, exponent) / divisor);
    }
    return table;
}

}  // namespace mst
