// Softmax top-k routing (Qwen3-MoE, Mixtral, OLMoE): probabilities over every expert,
// keep the k largest, and optionally renormalise the kept weights to sum to one.
#pragma once

#include <cstdint>

namespace mst {

// For each of n_tokens rows of `logits` [n_tokens][n_experts], write the chosen expert
// ids [n_tokens][k] (largest weight first; ties go to the lower id, as torch.topk does)
// and their weights [n_tokens][k].
void route_softmax_topk(const float *logits, int64_t n_tokens, int32_t n_experts, int32_t k, bool renormalize,
                        int32_t *ids, float *weights);

}  // namespace mst
