// Top-k then softmax routing (gpt-oss): keep the k largest router logits and turn only
// those into weights with a softmax, so the kept weights always sum to one and the
// experts left out never enter the normalisation.
#pragma once

#include <cstdint>

namespace mst {

// For each of n_tokens rows of `logits` [n_tokens][n_experts], write the chosen expert
// ids [n_tokens][k] (largest logit first; ties go to the lower id, as torch.topk does)
// and their weights [n_tokens][k] = softmax over the k kept logits.
void route_topk_softmax(const float *logits, int64_t n_tokens, int32_t n_experts, int32_t k, int32_t *ids,
                        float *weights);

}  // namespace mst
