// Token sampling from logits, in the order Hugging Face generate applies its processors:
// repetition penalty, then temperature, top-k, top-p, min-p, then a draw.
#pragma once

#include <cstdint>
#include <random>
#include <span>

namespace mst {

struct SamplerOptions {
    float temperature = 0.8f;         // <= 0: greedy
    int32_t top_k = 40;               // <= 0: off
    float top_p = 0.95f;              // >= 1: off
    float min_p = 0.05f;              // <= 0: off
    float repetition_penalty = 1.0f;  // 1: off
    int32_t repetition_last_n = 64;   // how far back the penalty looks; < 0: whole context
};

// Throws INVALID_ARGUMENT for out-of-range options (negative penalty, p outside [0, 1]...).
void validate_sampler_options(const SamplerOptions &options);

// Pick a token from `logits` given the context `history` (for the repetition penalty).
// Logits that are NaN or infinite are MST_ERR_BACKEND naming how many and where.
int32_t sample_token(std::span<const float> logits, std::span<const int32_t> history, const SamplerOptions &options,
                     std::mt19937_64 &rng);

}  // namespace mst
