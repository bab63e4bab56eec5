#include "model/rope_frequencies.h"

#include <algorithm>
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

namespace {

// YaRN (arXiv 2309.00071): interpolate the low frequencies by `factor`, keep the high
// ones, blend linearly between the correction dims; all in float32 like the reference.
void apply_yarn(const ModelConfig &config, RopeTable &table) {
    const RopeScaling &rs = config.rope_scaling;
    const int32_t dim = table.rotary_dim;
    const double base = config.rope_theta;
    double factor = rs.factor;
    if (rs.original_max_position_embeddings <= 0)
        fail(MST_ERR_BAD_FORMAT, "yarn rope scaling needs original_max_position_embeddings");
    auto get_mscale = [](double scale, double m) { return scale <= 1.0 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; };
    if (rs.attention_factor) {
        table.attention_factor = float(*rs.attention_factor);
    } else if (rs.mscale != 0.0 && rs.mscale_all_dim != 0.0) {
        table.attention_factor = float(get_mscale(factor, rs.mscale) / get_mscale(factor, rs.mscale_all_dim));
    } else {
        table.attention_factor = float(get_mscale(factor, 1.0));
    }
    const double orig = double(rs.original_max_position_embeddings);
    auto correction_dim = [&](double rotations) {
        return (dim * std::log(orig / (rotations * 2.0 * M_PI))) / (2.0 * std::log(base));
    };
    double low = correction_dim(rs.beta_fast), high = correction_dim(rs.beta_slow);
    if (rs.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, double(dim - 1));
    if (low == high) high += 0.001;  // the reference's guard against a zero-width ramp
    for (int32_t i = 0; i < dim / 2; ++i) {
        const float extrapolation = table.inv_freq[size_t(i)];
        const float interpolation = extrapolation / float(factor);
        const float ramp = std::clamp((float(i) - float(low)) / (float(high) - float(low)), 0.0f, 1.0f);
        const float keep = 1.0f - ramp;  // share of the unscaled (extrapolated) frequency
        table.inv_freq[size_t(i)] = interpolation * (1.0f - keep) + extrapolation * keep;
    }
}

}  // namespace

RopeTable make_rope_table(const ModelConfig &config, int32_t rotary_dim) {
    if (rotary_dim <= 0 || rotary_dim % 2 != 0)
        fail(MST_ERR_BAD_FORMAT, "rotary dimension must be positive and even, got {}", rotary_dim);
    RopeTable table;
    table.rotary_dim = rotary_dim;
    const std::string &type = config.rope_scaling.type;
    if (type != "default" && type != "linear" && type != "yarn")
        fail(MST_ERR_UNSUPPORTED, "rope type '{}' is not supported for {} (supported: default, linear, yarn)", type,
             config.model_type);
    // base ** (2i / d) in float32, as the reference computes it.
    const float base = float(config.rope_theta);
    for (int32_t i = 0; i < rotary_dim; i += 2) {
        const float exponent = float(i) / float(rotary_dim);
        table.inv_freq.push_back(1.0f / std::pow(base, exponent));
    }
    if (type == "linear")
        for (float &f : table.inv_freq) f /= float(config.rope_scaling.factor);
    if (type == "yarn") apply_yarn(config, table);
    if (config.rope_bf16_frequencies)
        for (float &f : table.inv_freq) f = bf16_to_f32(f32_to_bf16(f));
    return table;
}

}  // namespace mst
