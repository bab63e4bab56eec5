// Token sampling from logits, in the order Hugging Face generate applies its processors:
// repetition penalty, then temperature, top-k, top-p, min-p, then a draw.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

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

struct SamplerCandidate {
    float z;
    int32_t id;
};

// The memory sample_token works in, kept between calls (a session keeps one): a decode
// step's sampling then allocates nothing. Fresh vectors the size of the vocabulary (about
// 5 MB of them a token over 152k logits) were zero-filled and page-faulted every token.
struct SamplerScratch {
    std::vector<float> penalized;              // the logits after the repetition penalty
    std::vector<int32_t> seen;                 // ids the penalty applies to, sorted, unique
    std::vector<SamplerCandidate> candidates;  // highest first once sorted
    std::vector<SamplerCandidate> sort_buffer;
    std::vector<uint32_t> histogram;
    std::vector<double> probabilities, cumulative;
};

// Pick a token from `logits` given the context `history` (for the repetition penalty).
// Logits that are NaN or infinite are MST_ERR_BACKEND naming how many and where.
// For a seed the token is the one std::discrete_distribution draws over the kept
// candidates ordered by logit (ties by id); temperature <= 0 takes the first highest.
int32_t sample_token(std::span<const float> logits, std::span<const int32_t> history, const SamplerOptions &options,
                     std::mt19937_64 &rng, SamplerScratch &scratch);

// The same with memory of its own, allocated for this call.
int32_t sample_token(std::span<const float> logits, std::span<const int32_t> history, const SamplerOptions &options,
                     std::mt19937_64 &rng);

}  // namespace mst
