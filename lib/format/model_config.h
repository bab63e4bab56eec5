// The Hugging Face config.json of a checkpoint, reduced to the fields every
// Mixture-of-Experts architecture shares. Architecture-specific fields stay in `raw`.
// Both spellings of RoPE settings are read: transformers 5 (`rope_parameters`) and the
// older one most published checkpoints use (top-level `rope_theta` + `rope_scaling`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace mst {

struct RopeScaling {
    std::string type = "default";  // "rope_type" (or the older "type"): default, yarn, llama3, linear, ...
    double factor = 1.0;
    int64_t original_max_position_embeddings = 0;  // 0 when the config does not say
    double beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0;
    std::optional<double> attention_factor;
    bool truncate = true;
    double low_freq_factor = 1.0, high_freq_factor = 4.0;
};

struct ModelConfig {
    std::string model_type;        // of the text model (e.g. "qwen3_5_moe_text"), from text_config when present
    std::string outer_model_type;  // the top-level model_type
    std::vector<std::string> architectures;  // the top-level list: it names the checkpoint's class
    int64_t vocab_size = 0, hidden_size = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
    int64_t intermediate_size = 0;      // dense MLP
    int64_t moe_intermediate_size = 0;  // per expert; intermediate_size when absent in an MoE config
    int64_t n_experts = 0;              // "num_experts" | "num_local_experts" | "n_routed_experts"
    int64_t n_experts_per_tok = 0;      // "num_experts_per_tok" | "experts_per_token"
    int64_t n_shared_experts = 0, shared_expert_intermediate_size = 0;
    bool norm_topk_prob = false;
    double rms_norm_eps = 1e-6;
    double rope_theta = 10000.0;
    bool rope_bf16_frequencies = false;  // a load option, not in config.json: see mst_model_params
    double partial_rotary_factor = 1.0;  // top-level or inside rope_parameters
    RopeScaling rope_scaling;
    int64_t max_position_embeddings = 0;
    bool tie_word_embeddings = false;
    bool attention_bias = false;
    std::vector<int64_t> mlp_only_layers;
    int64_t decoder_sparse_step = 1;
    int64_t sliding_window = 0;  // 0 = none (null in JSON, or use_sliding_window false)
    std::vector<std::string> layer_types;
    std::vector<int64_t> eos_token_ids;  // eos_token_id may be int, list or null
    std::optional<int64_t> bos_token_id;
    nlohmann::json raw;        // the (text) config object, for architecture-specific fields
    nlohmann::json outer_raw;  // the whole config.json (quantization_config may live here)
};

// Largest config.json read; real ones are a few KiB.
inline constexpr size_t kMaxConfigBytes = size_t(16) << 20;

// Reads and parses a config.json. MST_ERR_IO when unreadable; otherwise as below.
ModelConfig parse_model_config_file(const std::string &config_json_path);

// Parses config.json text. Errors are MST_ERR_BAD_FORMAT naming origin_for_errors and
// the field: invalid JSON, a missing required field (model_type, hidden_size,
// num_hidden_layers, num_attention_heads, vocab_size), a field of the wrong JSON type,
// a non-positive size, n_heads not divisible by n_kv_heads, top-k above the expert
// count. An unknown model_type is accepted (the model registry judges it).
ModelConfig parse_model_config(std::string_view json_text, const std::string &origin_for_errors);

}  // namespace mst
