#include "convert/gguf_model_metadata.h"

#include <fmt/format.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace mst {
namespace {

// llama.cpp's token types (llama_token_type).
constexpr int32_t kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5;

template <typename T>
T field(const nlohmann::json &config, const char *key) {
    if (!config.contains(key)) fail(MST_ERR_BAD_FORMAT, "config.json lacks '{}', which GGUF needs", key);
    try {
        return config.at(key).get<T>();
    } catch (const nlohmann::json::exception &) {
        fail(MST_ERR_BAD_FORMAT, "config.json's '{}' is not a number", key);
    }
}

// The RoPE object of a config: transformers 5's rope_parameters or the older rope_scaling.
nlohmann::json rope_object(const nlohmann::json &config) {
    if (config.contains("rope_parameters") && config["rope_parameters"].is_object()) return config["rope_parameters"];
    if (config.contains("rope_scaling") && config["rope_scaling"].is_object()) return config["rope_scaling"];
    return nlohmann::json::object();
}

// Multi-head attention sizes (qwen3moe): one head_dim for keys, values and RoPE.
void add_mha_hyperparameters(GgufWriter &w, const std::string &a, const nlohmann::json &config) {
    const auto hidden = field<uint32_t>(config, "hidden_size"), heads = field<uint32_t>(config, "num_attention_heads");
    w.add_u32(a + "attention.head_count_kv", field<uint32_t>(config, "num_key_value_heads"));
    const uint32_t head_dim = config.contains("head_dim") && !config["head_dim"].is_null()
                                  ? field<uint32_t>(config, "head_dim")
                                  : hidden / heads;
    w.add_u32(a + "attention.key_length", head_dim);
    w.add_u32(a + "attention.value_length", head_dim);
    w.add_u32(a + "rope.dimension_count", head_dim);
}

// DeepseekV2Model.set_gguf_parameters with kv_b_proj kept whole (attn_kv_b, as the export
// writes it): multi-head key / value sizes, the MLA ranks, the leading dense layers, the
// shared experts and the sigmoid router with its groups, YaRN where the config has it.
void add_deepseek2_hyperparameters(GgufWriter &w, const std::string &a, const nlohmann::json &config) {
    if (config.value("scoring_func", "sigmoid") != "sigmoid")
        fail(MST_ERR_UNSUPPORTED, "a deepseek2 GGUF is written for the sigmoid router; config.json's scoring_func is {}",
             config["scoring_func"].dump());
    const auto rope = field<uint32_t>(config, "qk_rope_head_dim"), nope = field<uint32_t>(config, "qk_nope_head_dim");
    w.add_u32(a + "leading_dense_block_count", config.value("first_k_dense_replace", 0u));
    w.add_u32(a + "vocab_size", field<uint32_t>(config, "vocab_size"));
    if (config.value("q_lora_rank", nlohmann::json()).is_number() && config["q_lora_rank"].get<uint32_t>() > 0)
        w.add_u32(a + "attention.q_lora_rank", field<uint32_t>(config, "q_lora_rank"));
    w.add_u32(a + "attention.kv_lora_rank", field<uint32_t>(config, "kv_lora_rank"));
    w.add_u32(a + "attention.head_count_kv", field<uint32_t>(config, "num_key_value_heads"));
    w.add_u32(a + "attention.key_length", nope + rope);
    w.add_u32(a + "attention.value_length", field<uint32_t>(config, "v_head_dim"));
    w.add_u32(a + "expert_shared_count", field<uint32_t>(config, "n_shared_experts"));
    w.add_f32(a + "expert_weights_scale", field<float>(config, "routed_scaling_factor"));
    if (config.value("norm_topk_prob", false)) w.add_bool(a + "expert_weights_norm", true);
    w.add_u32(a + "expert_group_count", config.value("n_group", 1u));
    w.add_u32(a + "expert_group_used_count", config.value("topk_group", 1u));
    w.add_u32(a + "expert_gating_func", 2);  // llama.cpp's LLAMA_EXPERT_GATING_FUNC_TYPE_SIGMOID
    w.add_u32(a + "rope.dimension_count", rope);
    const nlohmann::json rope_params = rope_object(config);
    if (rope_params.value("rope_type", rope_params.value("type", "")) == "yarn") {
        w.add_string(a + "rope.scaling.type", "yarn");
        w.add_f32(a + "rope.scaling.factor", field<float>(rope_params, "factor"));
        w.add_u32(a + "rope.scaling.original_context_length",
                  field<uint32_t>(rope_params, "original_max_position_embeddings"));
        if (rope_params.contains("beta_fast")) w.add_f32(a + "rope.scaling.yarn_beta_fast", field<float>(rope_params, "beta_fast"));
        if (rope_params.contains("beta_slow")) w.add_f32(a + "rope.scaling.yarn_beta_slow", field<float>(rope_params, "beta_slow"));
        if (rope_params.contains("mscale_all_dim"))
            w.add_f32(a + "rope.scaling.yarn_log_multiplier", 0.1f * field<float>(rope_params, "mscale_all_dim"));
    }
}

}  // namespace

void add_qwen_hybrid_hyperparameters(GgufWriter &w, const std::string &a, const nlohmann::json &config, bool sections) {
    const auto n_k_heads = field<uint32_t>(config, "linear_num_key_heads");
    const auto n_v_heads = field<uint32_t>(config, "linear_num_value_heads");
    const auto head_dim = field<uint32_t>(config, "head_dim");
    const nlohmann::json rope = rope_object(config);
    const double partial = rope.contains("partial_rotary_factor") ? field<double>(rope, "partial_rotary_factor")
                                                                  : config.value("partial_rotary_factor", 0.25);
    w.add_u32(a + "attention.head_count_kv", field<uint32_t>(config, "num_key_value_heads"));
    w.add_u32(a + "attention.key_length", head_dim);
    w.add_u32(a + "attention.value_length", head_dim);
    w.add_u32(a + "rope.dimension_count", uint32_t(double(head_dim) * partial));
    w.add_u32(a + "expert_shared_feed_forward_length", field<uint32_t>(config, "shared_expert_intermediate_size"));
    w.add_u32(a + "ssm.conv_kernel", field<uint32_t>(config, "linear_conv_kernel_dim"));
    w.add_u32(a + "ssm.state_size", field<uint32_t>(config, "linear_key_head_dim"));
    w.add_u32(a + "ssm.group_count", n_k_heads);
    w.add_u32(a + "ssm.time_step_rank", n_v_heads);
    w.add_u32(a + "ssm.inner_size", field<uint32_t>(config, "linear_value_head_dim") * n_v_heads);
    if (!config.contains("layer_types") || !config["layer_types"].is_array())
        fail(MST_ERR_BAD_FORMAT, "config.json lacks 'layer_types', which GGUF needs");
    std::vector<bool> recurrent;
    for (const auto &t : config["layer_types"]) recurrent.push_back(t == "linear_attention");
    w.add_bool_array(a + "attention.recurrent_layers", recurrent);
    w.add_u32(a + "full_attention_interval", config.value("full_attention_interval", 4u));
    if (sections) {
        std::vector<int32_t> mrope = rope.value("mrope_section", std::vector<int32_t>{11, 11, 10});
        mrope.resize(4, 0);
        w.add_i32_array(a + "rope.dimension_sections", mrope);
    }
}

namespace {

void add_hyperparameters(GgufWriter &w, const std::string &arch, const nlohmann::json &config) {
    const std::string a = arch + ".";
    w.add_u32(a + "block_count", field<uint32_t>(config, "num_hidden_layers"));
    w.add_u32(a + "context_length", field<uint32_t>(config, "max_position_embeddings"));
    w.add_u32(a + "embedding_length", field<uint32_t>(config, "hidden_size"));
    // Optional, as convert_hf_to_gguf.py has it (Qwen3.5-MoE's config has none).
    if (config.contains("intermediate_size"))
        w.add_u32(a + "feed_forward_length", field<uint32_t>(config, "intermediate_size"));
    w.add_u32(a + "attention.head_count", field<uint32_t>(config, "num_attention_heads"));
    const nlohmann::json rope = rope_object(config);
    const double theta = rope.contains("rope_theta") ? field<double>(rope, "rope_theta") : config.value("rope_theta", 10000.0);
    w.add_f32(a + "rope.freq_base", float(theta));
    w.add_f32(a + "attention.layer_norm_rms_epsilon", field<float>(config, "rms_norm_eps"));
    const char *experts = config.contains("num_experts")         ? "num_experts"
                          : config.contains("n_routed_experts") ? "n_routed_experts"
                                                                : "num_local_experts";
    w.add_u32(a + "expert_count", field<uint32_t>(config, experts));
    w.add_u32(a + "expert_used_count", field<uint32_t>(config, "num_experts_per_tok"));
    if (config.contains("moe_intermediate_size"))
        w.add_u32(a + "expert_feed_forward_length", field<uint32_t>(config, "moe_intermediate_size"));
    if (arch == "deepseek2")
        add_deepseek2_hyperparameters(w, a, config);
    else if (arch == "qwen35moe" || arch == "qwen3next")
        add_qwen_hybrid_hyperparameters(w, a, config, arch == "qwen35moe");
    else
        add_mha_hyperparameters(w, a, config);
}

}  // namespace

void add_gguf_vocabulary(GgufWriter &w, const nlohmann::json &tok, const nlohmann::json &tc, size_t vocab_size,
                         std::string_view pre) {
    std::vector<std::string> tokens(vocab_size);
    std::vector<int32_t> types(vocab_size, kUnused);
    const auto put = [&](size_t id, std::string text, int32_t type) {
        if (id >= vocab_size)
            fail(MST_ERR_BAD_FORMAT, "tokenizer.json's token '{}' has id {}, outside the vocabulary of {}", text, id,
                 vocab_size);
        tokens[id] = std::move(text);
        types[id] = type;
    };
    for (const auto &[text, id] : tok.at("model").at("vocab").items()) put(id.get<size_t>(), text, kNormal);
    for (const auto &added : tok.at("added_tokens"))
        put(added.at("id").get<size_t>(), added.at("content").get<std::string>(),
            added.value("special", false) ? kControl : kUserDefined);
    // As convert_hf_to_gguf.py pads a vocabulary smaller than the embedding.
    for (size_t id = 0; id < vocab_size; ++id)
        if (types[id] == kUnused) tokens[id] = fmt::format("[PAD{}]", id);
    std::vector<std::string> merges;
    for (const auto &m : tok.at("model").at("merges"))
        merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", pre);
    w.add_string_array("tokenizer.ggml.tokens", tokens);
    w.add_i32_array("tokenizer.ggml.token_type", types);
    w.add_string_array("tokenizer.ggml.merges", merges);
    const auto id_of = [&](const char *key) -> int64_t {
        const nlohmann::json v = tc.value(key, nlohmann::json());
        if (!v.is_string()) return -1;
        for (size_t id = 0; id < tokens.size(); ++id)
            if (types[id] != kUnused && tokens[id] == v.get<std::string>()) return int64_t(id);
        return -1;
    };
    if (const int64_t eos = id_of("eos_token"); eos >= 0) w.add_u32("tokenizer.ggml.eos_token_id", uint32_t(eos));
    if (const int64_t bos = id_of("bos_token"); bos >= 0) w.add_u32("tokenizer.ggml.bos_token_id", uint32_t(bos));
    if (const int64_t pad = id_of("pad_token"); pad >= 0) w.add_u32("tokenizer.ggml.padding_token_id", uint32_t(pad));
    w.add_bool("tokenizer.ggml.add_bos_token", tc.value("add_bos_token", false));
}

void add_gguf_model_metadata(GgufWriter &w, const GgufArchitecture &arch, const nlohmann::json &config,
                             const nlohmann::json &tokenizer, const nlohmann::json &tokenizer_config,
                             uint32_t file_type) {
    w.add_string("general.architecture", arch.gguf_name);
    w.add_string("general.name", "moestream export");
    add_hyperparameters(w, arch.gguf_name, config);
    w.add_u32("general.file_type", file_type);
    try {
        add_gguf_vocabulary(w, tokenizer, tokenizer_config, field<size_t>(config, "vocab_size"));
    } catch (const nlohmann::json::exception &e) {
        fail(MST_ERR_BAD_FORMAT, "tokenizer.json cannot be written as tokenizer.ggml.*: {}", e.what());
    }
}

}  // namespace mst
