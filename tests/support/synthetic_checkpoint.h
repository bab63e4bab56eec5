// Writes a Qwen3-MoE checkpoint directory of any shape with random bf16 weights,
// streaming tensor by tensor so that a large one costs the test no memory. Used by the
// tests that need more expert bytes than the tiny reference models have.
#pragma once

#include <cstdint>
#include <string>

namespace mst::test {

struct SyntheticShape {
    int64_t hidden = 256;
    int64_t layers = 2;
    int64_t experts = 64;
    int64_t top_k = 4;
    int64_t expert_ffn = 1024;
    int64_t heads = 4;
    int64_t kv_heads = 2;
    int64_t head_dim = 64;
    int64_t vocab = 1024;
    uint64_t seed = 1;
};

// Writes config.json, model.safetensors and the tests/data tokenizer into `dir`.
// Returns the bytes of routed-expert weights written.
uint64_t write_synthetic_qwen3_moe(const std::string &dir, const SyntheticShape &shape);

}  // namespace mst::test
