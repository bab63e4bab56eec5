// Finds the routed SwiGLU experts (parts in swiglu_part order) of one layer in a
// checkpoint, stored either per expert
// (<prefix>.<e>.<gate>.weight ...) or fused per layer as transformers 5 holds them
// (<prefix>.gate_up_proj [E][2I][H], gate rows first, and <prefix>.down_proj [E][H][I]).
#pragma once

#include <string>
#include <vector>

#include "experts/expert_layout.h"
#include "format/checkpoint.h"

namespace mst {

struct ExpertTensorNames {
    std::string gate = "gate_proj";  // Mixtral: w1
    std::string up = "up_proj";      // Mixtral: w3
    std::string down = "down_proj";  // Mixtral: w2
};

// Throws BAD_FORMAT naming the first missing or misshapen tensor.
std::vector<ExpertLayout> locate_experts(const Checkpoint &checkpoint, const std::string &prefix, int64_t n_experts,
                                         int64_t hidden, int64_t intermediate, const ExpertTensorNames &names = {});

// Checks layouts from wherever they came (a packed index is only as good as its file):
// n_experts experts of three parts, gate and up [intermediate][hidden] and down
// [hidden][intermediate], each in a type the matmul takes (F32, F16, BF16, Q8, Q4).
// Throws BAD_FORMAT naming `where`, the layer, the expert and the part.
void check_swiglu_experts(const std::vector<ExpertLayout> &layouts, int64_t n_experts, int64_t hidden,
                          int64_t intermediate, const std::string &where, int64_t layer);

}  // namespace mst
