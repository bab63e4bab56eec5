// The per-session state of a model's linear-attention (Gated DeltaNet) layers: each
// layer's convolution history and recurrent matrices. Unlike a KV cache, a forward call
// overwrites it, so it is double-buffered: a call reads one buffer and writes the other,
// and commit() swaps them once every layer has run. A call that fails midway (an expert
// read error) thus leaves the session's state as it was, at twice the state's memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace mst {

class LinearAttentionState {
public:
    // n_layers linear-attention layers, each with conv_elements floats of convolution
    // history and recurrent_elements floats of recurrent state.
    LinearAttentionState(int32_t n_layers, int64_t conv_elements, int64_t recurrent_elements);

    // Start a forward call whose first token sits at n_past. 0 starts a new sequence (the
    // inputs read as zeros); anything else must equal n_tokens(), since a recurrent state
    // cannot be rewound: MST_ERR_INVALID_ARGUMENT otherwise.
    void begin(int32_t n_past);
    // What the call reads (nullptr = zeros) and writes, for linear-attention layer `layer`.
    const float *conv_in(int32_t layer) const { return fresh_ ? nullptr : conv_[current_][size_t(layer)].data(); }
    float *conv_out(int32_t layer) { return conv_[1 - current_][size_t(layer)].data(); }
    const float *recurrent_in(int32_t layer) const {
        return fresh_ ? nullptr : recurrent_[current_][size_t(layer)].data();
    }
    float *recurrent_out(int32_t layer) { return recurrent_[1 - current_][size_t(layer)].data(); }
    // End the call begun at n_past after every layer wrote its output: n_past + n_new tokens
    // are now absorbed.
    void commit(int32_t n_past, int32_t n_new);

    int32_t n_tokens() const { return n_tokens_; }
    // Appends the state after n_past tokens (every layer's convolution history, then its
    // recurrent state; nothing for 0) to `out`. Saving needs n_past == n_tokens().
    void contents(int32_t n_past, std::vector<std::span<float>> &out);
    // After a restore wrote contents(n_past): the state has absorbed n_past tokens.
    void restored(int32_t n_past);
    uint64_t bytes() const;

private:
    std::vector<std::vector<float>> conv_[2], recurrent_[2];
    int current_ = 0;
    bool fresh_ = true;
    int32_t n_tokens_ = 0;
};

}  // namespace mst
