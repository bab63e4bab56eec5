#include "model/linear_attention_state.h"

#include "core/error.h"

namespace mst {

LinearAttentionState::LinearAttentionState(int32_t n_layers, int64_t conv_elements, int64_t recurrent_elements) {
    for (int b = 0; b < 2; ++b) {
        conv_[b].assign(size_t(n_layers), std::vector<float>(size_t(conv_elements), 0.0f));
        recurrent_[b].assign(size_t(n_layers), std::vector<float>(size_t(recurrent_elements), 0.0f));
    }
}

void LinearAttentionState::begin(int32_t n_past) {
    if (n_past != 0 && n_past != n_tokens_)
        fail(MST_ERR_INVALID_ARGUMENT,
             "linear-attention state holds {} tokens; it cannot continue at position {} (a recurrent state cannot be "
             "rewound: reset the session and evaluate from position 0)",
             n_tokens_, n_past);
    fresh_ = n_past == 0;
}

void LinearAttentionState::commit(int32_t n_past, int32_t n_new) {
    current_ = 1 - current_;
    fresh_ = false;
    n_tokens_ = n_past + n_new;
}

void LinearAttentionState::contents(int32_t n_past, std::vector<std::span<float>> &out) {
    if (n_past == 0) return;
    for (auto &layer : conv_[current_]) out.emplace_back(layer);
    for (auto &layer : recurrent_[current_]) out.emplace_back(layer);
}

void LinearAttentionState::restored(int32_t n_past) {
    fresh_ = n_past == 0;
    n_tokens_ = n_past;
}

uint64_t LinearAttentionState::bytes() const {
    uint64_t n = 0;
    for (int b = 0; b < 2; ++b) {
        for (const auto &layer : conv_[b]) n += layer.size() * sizeof(float);
        for (const auto &layer : recurrent_[b]) n += layer.size() * sizeof(float);
    }
    return n;
}

}  // namespace mst
