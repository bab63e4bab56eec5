// Writes small DeepSeek-V3 checkpoints with random weights, in two storage forms of the
// same function: projections as FP8 E4M3 with block scales (as real DeepSeek-V3 / Kimi K2
// checkpoints ship them), or as the exact float32 values those encode. Loading both
// and comparing their logits checks the FP8 path against the plain one.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace mst::test {

struct SyntheticDeepseek {
    bool fp8 = false;               // projections as F8_E4M3 + F32 `*_scale_inv`; else their exact values as F32
    bool fused_experts = false;     // experts as mlp.experts.gate_up_proj [E, 2I, H] / down_proj [E, H, I]
    bool bf16_expert_down = false;  // expert down projections stored as BF16 in both forms
    int64_t block_rows = 16, block_cols = 32;
    uint64_t seed = 1;
    std::string omit_tensor;  // a tensor left out of the file (to test the error naming it)
    nlohmann::json config_overrides = nlohmann::json::object();  // merged into config.json last
};

// The shape written: 3 layers (the first dense), hidden 64, 4 heads, q_lora 40,
// kv_lora 24, nope 16, rope 8, v 12, 8 experts of width 40 in 4 groups (top-2 groups,
// top-3 experts), one shared expert, vocabulary 1024 (the tests/data tokenizer).
struct SyntheticDeepseekShape {
    static constexpr int64_t kLayers = 3, kHidden = 64, kHeads = 4, kQLora = 40, kKvLora = 24, kNope = 16, kRope = 8,
                             kV = 12, kExperts = 8, kExpertFfn = 40, kDenseFfn = 96, kVocab = 1024, kTopK = 3;
};

void write_synthetic_deepseek(const std::string &dir, const SyntheticDeepseek &options);

}  // namespace mst::test
