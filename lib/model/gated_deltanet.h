// Gated DeltaNet, the linear attention of Qwen3.5 and Qwen3-Next: a causal depthwise
// convolution over the q/k/v projections, L2-normalised q and k, the gated delta rule
// with a per-head decay and learning rate, and a gated RMSNorm before the output
// projection. The two architectures store the input projections differently; both are
// brought to one layout at load time, so the computation is shared.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "format/model_config.h"
#include "model/resident_weights.h"

namespace mst {

struct GatedDeltaNetShape {
    int64_t n_k_heads = 0, n_v_heads = 0, k_dim = 0, v_dim = 0, conv_kernel = 0;
    float norm_eps = 1e-6f;

    int64_t key_dim() const { return n_k_heads * k_dim; }
    int64_t value_dim() const { return n_v_heads * v_dim; }
    // Channels of the convolution: q, k and v side by side.
    int64_t conv_dim() const { return 2 * key_dim() + value_dim(); }
    int64_t conv_state_elements() const { return (conv_kernel - 1) * conv_dim(); }
    int64_t recurrent_state_elements() const { return n_v_heads * k_dim * v_dim; }
};

// From the config's linear_* fields; MST_ERR_BAD_FORMAT naming a missing or bad one.
GatedDeltaNetShape gated_deltanet_shape(const ModelConfig &config);

// How a checkpoint stores the input projections.
enum class DeltaNetLayout {
    Separate,         // Qwen3.5: in_proj_qkv, in_proj_z, in_proj_b, in_proj_a
    FusedPerKeyHead,  // Qwen3-Next: in_proj_qkvz and in_proj_ba, grouped per key head
};

struct GatedDeltaNetWeights {
    WeightView qkv;                     // [conv_dim][H]: rows q (key heads), k (key heads), v (value heads)
    WeightView z;                       // [value_dim][H]: the output gate
    WeightView b, a;                    // [n_v_heads][H]: learning rate (beta) and decay step inputs
    WeightView conv;                    // [conv_dim][conv_kernel]
    WeightView norm;                    // [v_dim]
    WeightView out;                     // [H][value_dim]
    std::vector<float> a_log, dt_bias;  // [n_v_heads]
};

// Load one layer's weights from `prefix` ("model.layers.3.linear_attn.").
GatedDeltaNetWeights load_gated_deltanet(ResidentWeights &weights, const std::string &prefix,
                                         const GatedDeltaNetShape &shape, int64_t hidden, DeltaNetLayout layout);

// out [n][hidden] = the layer applied to h [n][hidden], continuing from the state read
// through conv_in / recurrent_in (nullptr = a new sequence) and writing the state after
// the last token to conv_out / recurrent_out (which may equal the inputs).
void gated_deltanet(Backend &backend, const GatedDeltaNetWeights &w, const GatedDeltaNetShape &shape, const float *h,
                    int64_t n_tokens, const float *conv_in, float *conv_out, const float *recurrent_in,
                    float *recurrent_out, float *out);

}  // namespace mst
