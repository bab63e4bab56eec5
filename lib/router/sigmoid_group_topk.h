// DeepSeek-V3 / Kimi K2 routing ("noaux_tc"): sigmoid scores; a per-expert correction bias
// that steers the choice but not the weights; experts split into n_group groups, each
// group rated by the sum of its two best biased scores, only the topk_group best groups
// eligible; the k best eligible experts, weighted by their unbiased scores, optionally
// renormalised to sum to one, times routed_scaling_factor.
#pragma once

#include <cstdint>

namespace mst {

struct GroupTopkParams {
    int32_t n_experts = 0;
    int32_t k = 0;           // 1..n_experts
    int32_t n_group = 1;     // divides n_experts
    int32_t topk_group = 1;  // 1..n_group
    bool normalize = true;   // norm_topk_prob
    float scaling = 1.0f;    // routed_scaling_factor
};

// For each of n_tokens rows of router `logits` [n_tokens][n_experts], write the chosen
// expert ids [n_tokens][k] (best biased score first; ties to the lower id) and their
// weights. correction_bias [n_experts] may be null (no bias). When k exceeds the experts
// of the eligible groups, the rest are taken from the other groups in id order, as the
// reference's top-k over -inf scores does. Throws MST_ERR_INVALID_ARGUMENT for
// inconsistent params.
void route_sigmoid_group_topk(const float *logits, const float *correction_bias, int64_t n_tokens,
                              const GroupTopkParams &p, int32_t *ids, float *weights);

}  // namespace mst
