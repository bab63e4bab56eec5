#include "gguf_model_writer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "convert/gguf_model_metadata.h"
#include "core/dtype.h"
#include "core/quant.h"
#include "format/checkpoint.h"
#include "gguf_builder.h"

namespace mst::test {
namespace {

nlohmann::json read_json(const std::string &path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error("cannot read " + path);
    return nlohmann::json::parse(f);
}

// The moestream type with the same bytes as a block type's; nullopt for the float ones.
std::optional<DType> block_dtype(GgufWeightType type) {
    switch (type) {
        case GgufWeightType::Q4_0: return DType::GGML_Q4_0;
        case GgufWeightType::Q4_1: return DType::Q4;
        case GgufWeightType::Q5_0: return DType::GGML_Q5_0;
        case GgufWeightType::Q5_1: return DType::GGML_Q5_1;
        case GgufWeightType::IQ4_NL: return DType::GGML_IQ4_NL;
        case GgufWeightType::IQ4_XS: return DType::GGML_IQ4_XS;
        case GgufWeightType::MXFP4: return DType::GGML_MXFP4;
        case GgufWeightType::Q2_K: return DType::GGML_Q2_K;
        case GgufWeightType::Q3_K: return DType::GGML_Q3_K;
        case GgufWeightType::Q4_K: return DType::GGML_Q4_K;
        case GgufWeightType::Q5_K: return DType::GGML_Q5_K;
        case GgufWeightType::Q6_K: return DType::GGML_Q6_K;
        default: return std::nullopt;
    }
}

std::string encode(const std::vector<float> &values, GgufWeightType type) {
    std::string out;
    if (const auto dtype = block_dtype(type)) {
        out.resize(size_t(dtype_row_bytes(*dtype, int64_t(values.size()))));
        quantize_row(*dtype, values.data(), int64_t(values.size()), out.data());
        return out;
    }
    switch (type) {
        case GgufWeightType::F32:
            out.resize(values.size() * 4);
            std::memcpy(out.data(), values.data(), out.size());
            break;
        case GgufWeightType::F16:
        case GgufWeightType::BF16:
            for (float v : values) {
                const uint16_t h = type == GgufWeightType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
                out.push_back(char(h & 0xff));
                out.push_back(char(h >> 8));
            }
            break;
        case GgufWeightType::Q8_0:
            out = quantize_q8_0(values.data(), values.size());
            break;
        default:
            throw std::logic_error("encode: unhandled GGUF weight type");
    }
    return out;
}

uint32_t ggml_of(GgufWeightType type) {
    switch (type) {
        case GgufWeightType::F32: return ggml_type::F32;
        case GgufWeightType::F16: return ggml_type::F16;
        case GgufWeightType::BF16: return ggml_type::BF16;
        case GgufWeightType::Q8_0: return ggml_type::Q8_0;
        case GgufWeightType::Q4_0: return ggml_type::Q4_0;
        case GgufWeightType::Q4_1: return ggml_type::Q4_1;
        case GgufWeightType::Q5_0: return ggml_type::Q5_0;
        case GgufWeightType::Q5_1: return ggml_type::Q5_1;
        case GgufWeightType::IQ4_NL: return ggml_type::IQ4_NL;
        case GgufWeightType::IQ4_XS: return ggml_type::IQ4_XS;
        case GgufWeightType::MXFP4: return ggml_type::MXFP4;
        case GgufWeightType::Q2_K: return ggml_type::Q2_K;
        case GgufWeightType::Q3_K: return ggml_type::Q3_K;
        case GgufWeightType::Q4_K: return ggml_type::Q4_K;
        case GgufWeightType::Q5_K: return ggml_type::Q5_K;
        case GgufWeightType::Q6_K: return ggml_type::Q6_K;
    }
    return ggml_type::F32;
}

// general.file_type holds llama.cpp's llama_ftype (LLAMA_FTYPE_MOSTLY_*), whose numbers
// differ from the ggml types'.
uint32_t llama_ftype_of(GgufWeightType type) {
    switch (type) {
        case GgufWeightType::F32: return llama_ftype::ALL_F32;
        case GgufWeightType::F16: return llama_ftype::MOSTLY_F16;
        case GgufWeightType::Q4_0: return llama_ftype::MOSTLY_Q4_0;
        case GgufWeightType::Q4_1: return llama_ftype::MOSTLY_Q4_1;
        case GgufWeightType::Q5_0: return llama_ftype::MOSTLY_Q5_0;
        case GgufWeightType::Q5_1: return llama_ftype::MOSTLY_Q5_1;
        case GgufWeightType::IQ4_NL: return llama_ftype::MOSTLY_IQ4_NL;
        case GgufWeightType::IQ4_XS: return llama_ftype::MOSTLY_IQ4_XS;
        case GgufWeightType::MXFP4: return llama_ftype::MOSTLY_MXFP4_MOE;
        case GgufWeightType::Q8_0: return llama_ftype::MOSTLY_Q8_0;
        case GgufWeightType::BF16: return llama_ftype::MOSTLY_BF16;
        case GgufWeightType::Q2_K: return llama_ftype::MOSTLY_Q2_K;
        case GgufWeightType::Q3_K: return llama_ftype::MOSTLY_Q3_K_S;
        case GgufWeightType::Q4_K: return llama_ftype::MOSTLY_Q4_K_S;
        case GgufWeightType::Q5_K: return llama_ftype::MOSTLY_Q5_K_S;
        case GgufWeightType::Q6_K: return llama_ftype::MOSTLY_Q6_K;
    }
    return llama_ftype::ALL_F32;
}



// llama.cpp's names (gguf-py TENSOR_NAMES) for the Hugging Face names of one block.
const std::map<std::string, std::string> kBlockNames = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"mlp.gate.weight", "ffn_gate_inp.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

void add_vocabulary(GgufBuilder &b, const std::string &dir, int64_t vocab_size) {
    add_gguf_vocabulary(b, read_json(dir + "/tokenizer.json"), read_json(dir + "/tokenizer_config.json"),
                        size_t(vocab_size));
}

// A SentencePiece vocabulary of vocab_size pieces, as real Mixtral GGUFs carry (pieces,
// scores, token types; no merges), in place of a checkpoint's byte-level one: <unk> <s>
// </s>, the 256 byte pieces, "▁" and the letters, the pieces of "▁the" ranked by score, then
// unused pieces up to vocab_size. test_gguf_sentencepiece.cpp knows these ids.
void add_sentencepiece_vocabulary(GgufBuilder &b, int64_t vocab_size) {
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
    std::vector<float> scores = {0, 0, 0};
    std::vector<int32_t> types = {2, 3, 3};
    const auto add = [&](const std::string &piece, float score, int32_t type) {
        tokens.push_back(piece);
        scores.push_back(score);
        types.push_back(type);
    };
    for (int byte = 0; byte < 256; ++byte) add(fmt::format("<0x{:02X}>", byte), 0, 6);
    add("\xe2\x96\x81", -1, 1);
    for (char c = 'a'; c <= 'z'; ++c) add(std::string(1, c), -2, 1);
    add("th", -3, 1);
    add("the", -4, 1);
    add("\xe2\x96\x81" "the", -5, 1);
    if (int64_t(tokens.size()) > vocab_size) throw std::runtime_error("vocab_size is too small for the vocabulary");
    while (int64_t(tokens.size()) < vocab_size) add("<unused" + std::to_string(tokens.size()) + ">", 0, 5);
    b.add_string("tokenizer.ggml.model", "llama");
    b.add_string_array("tokenizer.ggml.tokens", tokens);
    b.add_f32_array("tokenizer.ggml.scores", scores);
    b.add_i32_array("tokenizer.ggml.token_type", types);
    b.add_u32("tokenizer.ggml.unknown_token_id", 0);
    b.add_u32("tokenizer.ggml.bos_token_id", 1);
    b.add_u32("tokenizer.ggml.eos_token_id", 2);
    b.add_bool("tokenizer.ggml.add_bos_token", true);
    b.add_bool("tokenizer.ggml.add_eos_token", false);
}

}  // namespace

const char *gguf_weight_type_name(GgufWeightType type) {
    constexpr size_t kTypes = size_t(GgufWeightType::Q6_K) + 1;
    static const std::vector<std::string> names = [] {
        std::vector<std::string> out;
        for (size_t t = 0; t < kTypes; ++t) out.push_back(ggml_type_name(ggml_of(GgufWeightType(t))));
        return out;
    }();
    return names.at(size_t(type)).c_str();
}

std::string quantize_q8_0(const float *x, size_t n) {
    if (n % 32 != 0) throw std::invalid_argument("quantize_q8_0: length is not a multiple of 32");
    std::string out;
    out.reserve(n / 32 * 34);
    for (size_t b = 0; b < n; b += 32) {
        float amax = 0.0f;
        for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b + j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const uint16_t h = f32_to_f16(d);
        out.push_back(char(h & 0xff));
        out.push_back(char(h >> 8));
        for (size_t j = 0; j < 32; ++j) out.push_back(char(int8_t(std::lround(x[b + j] * id))));
    }
    return out;
}

namespace {

// Adds one tensor of the given shape (outermost first) from float values, in the type
// type_of picks.
using AddValues = std::function<void(const std::string &, std::vector<int64_t>, const std::vector<float> &, bool)>;

using AddLayer = std::function<void(const Checkpoint &, const nlohmann::json &, const std::string &,
                                    const std::string &, const AddValues &)>;

// How one architecture is written: its names, its own metadata keys, and what the
// converter does to some tensors on the way.
struct ArchSpec {
    std::string arch;                    // general.architecture
    std::vector<std::string> model_types;  // the config.json's it accepts
    std::map<std::string, std::string> block_names;  // HF name in a layer -> GGUF name after "blk.N."
    std::string experts;                 // "mlp.experts" | "block_sparse_moe.experts"
    std::vector<std::pair<std::string, std::string>> parts;  // gguf stacked part, HF part
    std::vector<std::string> keep_f32;   // GGUF block names kept F32 whatever the type (routers)
    bool permute_qk = false;
    bool split_kv_b = false;  // kv_b_proj written as attn_k_b / attn_v_b
    std::function<void(GgufBuilder &, const nlohmann::json &, const std::string &)> metadata;
    // Tensors of a layer the tables do not cover (gpt-oss's fused experts); may be empty.
    AddLayer layer_tensors;
    // Changes the converter makes to a tensor's values or shape, by Hugging Face name
    // (model.norm.weight included); may be empty.
    std::function<void(const std::string &hf_name, std::vector<int64_t> &shape, std::vector<float> &values)> transform;
};

// convert_hf_to_gguf.py's LlamaModel.permute: within each head of d rows, row j * d/2 + i
// moves to 2i + j.
std::vector<float> permute_rows(const std::vector<float> &w, int64_t rows, int64_t cols, int64_t heads) {
    std::vector<float> out(w.size());
    const int64_t d = rows / heads;
    for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < d / 2; ++i)
            for (int64_t j = 0; j < 2; ++j)
                std::copy_n(w.begin() + (h * d + j * (d / 2) + i) * cols, cols, out.begin() + (h * d + 2 * i + j) * cols);
    return out;
}

// The RoPE object of a config: transformers 5's rope_parameters or the older rope_scaling.
nlohmann::json rope_object(const nlohmann::json &config) {
    if (config.contains("rope_parameters")) return config["rope_parameters"];
    if (config.contains("rope_scaling") && config["rope_scaling"].is_object()) return config["rope_scaling"];
    return nlohmann::json::object();
}

void add_value(GgufBuilder &b, const std::string &key, const nlohmann::json &config, const char *field) {
    b.add_u32(key, config.at(field).get<uint32_t>());
}

// Multi-head attention keys of qwen3moe and llama.
void add_mha_metadata(GgufBuilder &b, const nlohmann::json &config, const std::string &a) {
    const int64_t hidden = config.at("hidden_size"), n_heads = config.at("num_attention_heads");
    add_value(b, a + "attention.head_count_kv", config, "num_key_value_heads");
    const int64_t head_dim = config.value("head_dim", hidden / n_heads);
    b.add_u32(a + "attention.key_length", uint32_t(head_dim));
    b.add_u32(a + "attention.value_length", uint32_t(head_dim));
    b.add_u32(a + "rope.dimension_count", uint32_t(head_dim));
    if (config.contains("moe_intermediate_size")) add_value(b, a + "expert_feed_forward_length", config, "moe_intermediate_size");
}

// The YaRN keys of the base converter (TextModel.set_gguf_parameters); true when the
// config's RoPE is YaRN.
bool add_yarn_metadata(GgufBuilder &b, const nlohmann::json &config, const std::string &a) {
    const nlohmann::json rope_params = rope_object(config);
    if (rope_params.value("rope_type", rope_params.value("type", "")) != "yarn") return false;
    b.add_string(a + "rope.scaling.type", "yarn");
    b.add_f32(a + "rope.scaling.factor", rope_params.at("factor").get<float>());
    add_value(b, a + "rope.scaling.original_context_length", rope_params, "original_max_position_embeddings");
    if (rope_params.contains("beta_fast")) b.add_f32(a + "rope.scaling.yarn_beta_fast", rope_params["beta_fast"].get<float>());
    if (rope_params.contains("beta_slow")) b.add_f32(a + "rope.scaling.yarn_beta_slow", rope_params["beta_slow"].get<float>());
    return true;
}

// DeepseekV2Model.set_gguf_parameters: MLA as one KV head of kv_lora_rank + rope (the true
// sizes under *_mla) when kv_b is split, as multi-head sizes otherwise (older files).
void add_deepseek2_metadata(GgufBuilder &b, const nlohmann::json &config, const std::string &a, bool split_kv_b) {
    const uint32_t rope = config.at("qk_rope_head_dim"), nope = config.at("qk_nope_head_dim");
    const uint32_t v = config.at("v_head_dim"), latent = config.at("kv_lora_rank");
    b.add_u32(a + "leading_dense_block_count", config.value("first_k_dense_replace", 0u));
    add_value(b, a + "vocab_size", config, "vocab_size");
    if (config.value("q_lora_rank", 0u) > 0) add_value(b, a + "attention.q_lora_rank", config, "q_lora_rank");
    b.add_u32(a + "attention.kv_lora_rank", latent);
    if (split_kv_b) {
        b.add_u32(a + "attention.head_count_kv", 1);
        b.add_u32(a + "attention.key_length", latent + rope);
        b.add_u32(a + "attention.value_length", latent);
        b.add_u32(a + "attention.key_length_mla", nope + rope);
        b.add_u32(a + "attention.value_length_mla", v);
    } else {
        add_value(b, a + "attention.head_count_kv", config, "num_key_value_heads");
        b.add_u32(a + "attention.key_length", nope + rope);
        b.add_u32(a + "attention.value_length", v);
    }
    add_value(b, a + "expert_feed_forward_length", config, "moe_intermediate_size");
    add_value(b, a + "expert_shared_count", config, "n_shared_experts");
    b.add_f32(a + "expert_weights_scale", config.at("routed_scaling_factor").get<float>());
    if (config.value("norm_topk_prob", false)) b.add_bool(a + "expert_weights_norm", true);
    add_value(b, a + "expert_group_count", config, "n_group");
    add_value(b, a + "expert_group_used_count", config, "topk_group");
    b.add_u32(a + "expert_gating_func", 2);  // sigmoid
    b.add_u32(a + "rope.dimension_count", rope);
    if (add_yarn_metadata(b, config, a)) {
        const nlohmann::json rope_params = rope_object(config);
        if (rope_params.contains("mscale_all_dim"))
            b.add_f32(a + "rope.scaling.yarn_log_multiplier", 0.1f * rope_params["mscale_all_dim"].get<float>());
    }
}

// gpt-oss (GptOssModel.set_gguf_parameters): multi-head attention sizes, the sliding
// window, experts sized by intermediate_size, YaRN.
void add_gpt_oss_metadata(GgufBuilder &b, const nlohmann::json &config, const std::string &a) {
    add_value(b, a + "attention.head_count_kv", config, "num_key_value_heads");
    add_value(b, a + "attention.key_length", config, "head_dim");
    add_value(b, a + "attention.value_length", config, "head_dim");
    add_value(b, a + "rope.dimension_count", config, "head_dim");
    add_value(b, a + "attention.sliding_window", config, "sliding_window");
    add_value(b, a + "expert_feed_forward_length", config, "intermediate_size");
    add_yarn_metadata(b, config, a);
}

// GptOssModel.modify_tensors for float experts: gate_up_proj [E][H][2I] transposed and
// its interleaved rows cut into gate (even) and up (odd), [E][I][H] each, the bias
// likewise; down_proj [E][I][H] transposed to [E][H][I].
void add_gpt_oss_experts(const Checkpoint &ckpt, const nlohmann::json &config, const std::string &hf,
                         const std::string &gg, const AddValues &add_values) {
    const int64_t E = config.at("num_local_experts"), H = config.at("hidden_size"), I = config.at("intermediate_size");
    const std::vector<float> gate_up = ckpt.read_f32(ckpt.require(hf + "mlp.experts.gate_up_proj"));
    const std::vector<float> gate_up_bias = ckpt.read_f32(ckpt.require(hf + "mlp.experts.gate_up_proj_bias"));
    const std::vector<float> down = ckpt.read_f32(ckpt.require(hf + "mlp.experts.down_proj"));
    std::vector<float> gate, up, gate_bias, up_bias, down_t;
    for (int64_t e = 0; e < E; ++e) {
        for (int64_t i = 0; i < 2 * I; ++i) {
            std::vector<float> &w = i % 2 == 0 ? gate : up;
            for (int64_t h = 0; h < H; ++h) w.push_back(gate_up[size_t((e * H + h) * 2 * I + i)]);
            (i % 2 == 0 ? gate_bias : up_bias).push_back(gate_up_bias[size_t(e * 2 * I + i)]);
        }
        for (int64_t h = 0; h < H; ++h)
            for (int64_t i = 0; i < I; ++i) down_t.push_back(down[size_t((e * I + i) * H + h)]);
    }
    add_values(gg + "ffn_gate_exps.weight", {E, I, H}, gate, false);
    add_values(gg + "ffn_gate_exps.bias", {E, I}, gate_bias, true);
    add_values(gg + "ffn_up_exps.weight", {E, I, H}, up, false);
    add_values(gg + "ffn_up_exps.bias", {E, I}, up_bias, true);
    add_values(gg + "ffn_down_exps.weight", {E, H, I}, down_t, false);
    add_values(gg + "ffn_down_exps.bias", {E, H}, ckpt.read_f32(ckpt.require(hf + "mlp.experts.down_proj_bias")), true);
}

// The type llama-quant.cpp's tensor_type_fallback puts in place of IQ4_XS or a K-quant for
// rows that are not whole 256-element super-blocks.
GgufWeightType super_block_fallback(GgufWeightType type) {
    switch (type) {
        case GgufWeightType::IQ4_XS: case GgufWeightType::Q2_K: case GgufWeightType::Q3_K: return GgufWeightType::IQ4_NL;
        case GgufWeightType::Q4_K: return GgufWeightType::Q5_0;
        case GgufWeightType::Q5_K: return GgufWeightType::Q5_1;
        case GgufWeightType::Q6_K: return GgufWeightType::Q8_0;
        default: return type;
    }
}

// Which type a matrix takes: `type`, but F32 for 1-D tensors and the kept ones; where
// llama.cpp's quantizer puts another: Q8_0 for the non-expert matrices of an MXFP4 file (its
// MXFP4_MOE type), super_block_fallback for rows that are not whole super-blocks, and F16 for
// rows that are still not whole blocks of the type.
GgufWeightType type_of(GgufWeightType type, const std::vector<int64_t> &shape, bool keep_f32, bool expert) {
    if (keep_f32 || shape.size() < 2) return GgufWeightType::F32;
    if (type == GgufWeightType::MXFP4 && !expert) type = GgufWeightType::Q8_0;
    if (shape.back() % 256 != 0) type = super_block_fallback(type);
    const bool float_type = type == GgufWeightType::F32 || type == GgufWeightType::F16 || type == GgufWeightType::BF16;
    if (!float_type && shape.back() % 32 != 0) return GgufWeightType::F16;
    return type;
}

// The bytes a matrix of `wt` is written as: its encoding, or (decoded) the F32 values that
// encoding decodes to, with `wt` set to F32.
std::string matrix_bytes(GgufWeightType &wt, bool decoded, int64_t cols, std::vector<float> values) {
    if (!decoded || wt == GgufWeightType::F32) return encode(values, wt);
    const std::string bytes = encode(values, wt);
    const std::optional<DType> dtype = wt == GgufWeightType::F16    ? DType::F16
                                       : wt == GgufWeightType::BF16 ? DType::BF16
                                       : wt == GgufWeightType::Q8_0 ? DType::Q8
                                                                    : block_dtype(wt);
    const uint64_t row_bytes = dtype_row_bytes(*dtype, cols);
    for (size_t r = 0; r < values.size() / size_t(cols); ++r)
        convert_to_f32(*dtype, bytes.data() + r * row_bytes, values.data() + r * size_t(cols), size_t(cols));
    wt = GgufWeightType::F32;
    return encode(values, wt);
}

void write_gguf(const ArchSpec &spec, const std::string &dir, const std::string &gguf_path, GgufWeightType type,
                bool decoded = false, bool sentencepiece = false) {
    const nlohmann::json config = read_json(dir + "/config.json");
    if (std::find(spec.model_types.begin(), spec.model_types.end(), config.at("model_type")) == spec.model_types.end())
        throw std::runtime_error(dir + " is not a " + spec.model_types[0] + " checkpoint");
    const auto ckpt = Checkpoint::open(dir);
    const int64_t n_layers = config.at("num_hidden_layers"), hidden = config.at("hidden_size");
    const int64_t n_heads = config.at("num_attention_heads"), n_kv_heads = config.value("num_key_value_heads", n_heads);
    int64_t n_experts = 0;
    for (const char *key : {"num_experts", "num_local_experts", "n_routed_experts"})
        if (config.contains(key)) n_experts = config.at(key).get<int64_t>();
    const double theta = rope_object(config).value("rope_theta", config.value("rope_theta", 10000.0));

    GgufBuilder b;
    const std::string a = spec.arch + ".";
    b.add_string("general.architecture", spec.arch);
    b.add_string("general.name", "moestream test model");
    b.add_u32(a + "block_count", uint32_t(n_layers));
    add_value(b, a + "context_length", config, "max_position_embeddings");
    b.add_u32(a + "embedding_length", uint32_t(hidden));
    if (config.contains("intermediate_size")) add_value(b, a + "feed_forward_length", config, "intermediate_size");
    b.add_u32(a + "attention.head_count", uint32_t(n_heads));
    b.add_f32(a + "rope.freq_base", float(theta));
    b.add_f32(a + "attention.layer_norm_rms_epsilon", config.at("rms_norm_eps").get<float>());
    b.add_u32(a + "expert_count", uint32_t(n_experts));
    add_value(b, a + "expert_used_count", config, "num_experts_per_tok");
    spec.metadata(b, config, a);
    b.add_u32("general.file_type", llama_ftype_of(type));
    if (sentencepiece) add_sentencepiece_vocabulary(b, config.at("vocab_size").get<int64_t>());
    else add_vocabulary(b, dir, config.at("vocab_size").get<int64_t>());

    const auto add_values = [&](const std::string &gguf_name, std::vector<int64_t> shape, const std::vector<float> &values,
                                bool keep_f32) {
        GgufWeightType wt = type_of(type, shape, keep_f32, gguf_name.ends_with("_exps.weight"));
        const std::string bytes = matrix_bytes(wt, decoded, shape.back(), values);
        b.add_tensor(gguf_name, ggml_of(wt), std::vector<uint64_t>(shape.rbegin(), shape.rend()), bytes);
    };
    const auto add = [&](const std::string &gguf_name, const TensorInfo &t, bool keep_f32, int64_t permute_heads = 0) {
        std::vector<float> values = ckpt->read_f32(t);
        std::vector<int64_t> shape = t.shape;
        if (permute_heads > 0) values = permute_rows(values, t.shape[0], t.shape[1], permute_heads);
        if (spec.transform) spec.transform(t.name, shape, values);
        add_values(gguf_name, shape, values, keep_f32);
    };
    // DeepseekV2Model.modify_tensors: kv_b [heads][nope + v][latent] cut into k_b, each
    // head's key rows transposed to [heads][latent][nope], and v_b [heads][v][latent].
    const auto add_split_kv_b = [&](const std::string &gg, const TensorInfo &t) {
        const int64_t nope = config.at("qk_nope_head_dim"), v = config.at("v_head_dim"), latent = t.shape[1];
        const std::vector<float> w = ckpt->read_f32(t);
        std::vector<float> k_b, v_b;
        for (int64_t h = 0; h < n_heads; ++h) {
            const float *head = w.data() + h * (nope + v) * latent;
            for (int64_t l = 0; l < latent; ++l)
                for (int64_t n = 0; n < nope; ++n) k_b.push_back(head[n * latent + l]);
            v_b.insert(v_b.end(), head + nope * latent, head + (nope + v) * latent);
        }
        add_values(gg + "attn_k_b.weight", {n_heads, latent, nope}, k_b, false);
        add_values(gg + "attn_v_b.weight", {n_heads, v, latent}, v_b, false);
    };
    add("token_embd.weight", ckpt->require("model.embed_tokens.weight"), false);
    for (int64_t l = 0; l < n_layers; ++l) {
        const std::string hf = fmt::format("model.layers.{}.", l), gg = fmt::format("blk.{}.", l);
        for (const auto &[hf_name, gguf_name] : spec.block_names) {
            const TensorInfo *t = ckpt->find(hf + hf_name);
            if (!t) continue;
            if (spec.split_kv_b && gguf_name == "attn_kv_b.weight") {
                add_split_kv_b(gg, *t);
                continue;
            }
            int64_t heads = 0;
            if (spec.permute_qk && gguf_name == "attn_q.weight") heads = n_heads;
            if (spec.permute_qk && gguf_name == "attn_k.weight") heads = n_kv_heads;
            const bool keep_f32 =
                std::find(spec.keep_f32.begin(), spec.keep_f32.end(), gguf_name) != spec.keep_f32.end();
            add(gg + gguf_name, *t, keep_f32, heads);
        }
        if (spec.layer_tensors) spec.layer_tensors(*ckpt, config, hf, gg, add_values);
        if (!ckpt->find(fmt::format("{}{}.0.{}.weight", hf, spec.experts, spec.parts[0].second))) continue;
        for (const auto &[part, hf_part] : spec.parts) {
            std::vector<float> stacked;
            std::vector<int64_t> shape;
            for (int64_t e = 0; e < n_experts; ++e) {
                const TensorInfo &t = ckpt->require(fmt::format("{}{}.{}.{}.weight", hf, spec.experts, e, hf_part));
                const std::vector<float> v = ckpt->read_f32(t);
                stacked.insert(stacked.end(), v.begin(), v.end());
                shape = t.shape;
            }
            add_values(fmt::format("{}ffn_{}_exps.weight", gg, part), {n_experts, shape[0], shape[1]}, stacked, false);
        }
    }
    add("output_norm.weight", ckpt->require("model.norm.weight"), true);
    if (const TensorInfo *lm = ckpt->find("lm_head.weight")) add("output.weight", *lm, false);
    b.write(gguf_path);
}

// The Gated DeltaNet sizes of a Qwen3.5 / Qwen3-Next config.
struct LinearSizes {
    int64_t n_k_heads, n_v_heads, k_dim, v_dim;
    explicit LinearSizes(const nlohmann::json &c)
        : n_k_heads(c.at("linear_num_key_heads")), n_v_heads(c.at("linear_num_value_heads")),
          k_dim(c.at("linear_key_head_dim")), v_dim(c.at("linear_value_head_dim")) {}
    int64_t r() const { return n_v_heads / n_k_heads; }
};

// Value heads from grouped by key head to tiled (_LinearAttentionVReorderBase): row block
// of tiled position i * n_k + g takes grouped head g * r + i; rows [offset, offset +
// heads * size) of a [rows][cols] matrix.
std::vector<float> tile_heads(const std::vector<float> &w, int64_t cols, int64_t offset, const LinearSizes &s,
                              int64_t size) {
    std::vector<float> out = w;
    for (int64_t g = 0; g < s.n_k_heads; ++g)
        for (int64_t i = 0; i < s.r(); ++i)
            std::copy_n(w.begin() + (offset + (g * s.r() + i) * size) * cols, size * cols,
                        out.begin() + (offset + (i * s.n_k_heads + g) * size) * cols);
    return out;
}

// Qwen3NextModel.modify_tensors (and, for qwen35moe with fewer key than value heads, the
// value-head reorder): -exp(A_log), 1 + w for the RMSNorms but the DeltaNet's, conv1d
// squeezed, shared_expert_gate as a vector.
void transform_qwen_hybrid(const nlohmann::json &config, bool tiled, const std::string &name,
                           std::vector<int64_t> &shape, std::vector<float> &v) {
    const LinearSizes s(config);
    const auto ends = [&](std::string_view suffix) { return std::string_view(name).ends_with(suffix); };
    const int64_t qk_rows = 2 * s.n_k_heads * s.k_dim, cols = shape.size() > 1 ? shape.back() : 1;
    tiled = tiled && s.r() > 1;
    if (ends("linear_attn.A_log")) {
        for (float &x : v) x = -std::exp(x);
        if (tiled) v = tile_heads(v, 1, 0, s, 1);
    } else if (ends("linear_attn.dt_bias") || ends("in_proj_a.weight") || ends("in_proj_b.weight")) {
        if (tiled) v = tile_heads(v, cols, 0, s, 1);
    } else if (ends("in_proj_z.weight")) {
        if (tiled) v = tile_heads(v, cols, 0, s, s.v_dim);
    } else if (ends("in_proj_qkv.weight")) {
        if (tiled) v = tile_heads(v, cols, qk_rows, s, s.v_dim);
    } else if (ends("conv1d.weight")) {
        shape = {shape[0], shape[2]};
        if (tiled) v = tile_heads(v, shape[1], qk_rows, s, s.v_dim);
    } else if (ends("out_proj.weight")) {
        if (!tiled) return;
        // Columns: transpose, tile the rows, transpose back.
        const int64_t rows = shape[0];
        std::vector<float> t(v.size());
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j) t[size_t(j * rows + i)] = v[size_t(i * cols + j)];
        t = tile_heads(t, rows, 0, s, s.v_dim);
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j) v[size_t(i * cols + j)] = t[size_t(j * rows + i)];
    } else if (ends("shared_expert_gate.weight")) {
        shape = {shape[1]};
    } else if (ends("norm.weight") && !ends("linear_attn.norm.weight")) {
        for (float &x : v) x += 1.0f;
    }
}

// Qwen3-Next's in_proj_qkvz [per key head: q, k, v, z] cut into attn_qkv [all q, all k,
// all v] and attn_gate [all z] (Qwen3NextModel.modify_tensors).
void add_qwen3next_qkvz(const Checkpoint &ckpt, const nlohmann::json &config, const std::string &hf,
                        const std::string &gg, const AddValues &add_values) {
    const TensorInfo *t = ckpt.find(hf + "linear_attn.in_proj_qkvz.weight");
    if (!t) return;
    const LinearSizes s(config);
    const int64_t cols = t->shape[1], rv = s.r() * s.v_dim, group = 2 * s.k_dim + 2 * rv;
    const std::vector<float> w = ckpt.read_f32(*t);
    std::vector<float> parts[4];
    const int64_t offsets[4] = {0, s.k_dim, 2 * s.k_dim, 2 * s.k_dim + rv}, lengths[4] = {s.k_dim, s.k_dim, rv, rv};
    for (int part = 0; part < 4; ++part)
        for (int64_t g = 0; g < s.n_k_heads; ++g)
            parts[part].insert(parts[part].end(), w.begin() + (g * group + offsets[part]) * cols,
                               w.begin() + (g * group + offsets[part] + lengths[part]) * cols);
    std::vector<float> qkv = parts[0];
    qkv.insert(qkv.end(), parts[1].begin(), parts[1].end());
    qkv.insert(qkv.end(), parts[2].begin(), parts[2].end());
    add_values(gg + "attn_qkv.weight", {int64_t(qkv.size()) / cols, cols}, qkv, false);
    add_values(gg + "attn_gate.weight", {int64_t(parts[3].size()) / cols, cols}, parts[3], false);
}

const std::map<std::string, std::string> kQwenHybridNames = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "post_attention_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"linear_attn.in_proj_qkv.weight", "attn_qkv.weight"},
    {"linear_attn.in_proj_z.weight", "attn_gate.weight"},
    {"linear_attn.in_proj_ba.weight", "ssm_ba.weight"},
    {"linear_attn.in_proj_b.weight", "ssm_beta.weight"},
    {"linear_attn.in_proj_a.weight", "ssm_alpha.weight"},
    {"linear_attn.conv1d.weight", "ssm_conv1d.weight"},
    {"linear_attn.dt_bias", "ssm_dt.bias"},
    {"linear_attn.A_log", "ssm_a"},
    {"linear_attn.norm.weight", "ssm_norm.weight"},
    {"linear_attn.out_proj.weight", "ssm_out.weight"},
    {"mlp.gate.weight", "ffn_gate_inp.weight"},
    {"mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp.weight"},
    {"mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight"},
    {"mlp.shared_expert.up_proj.weight", "ffn_up_shexp.weight"},
    {"mlp.shared_expert.down_proj.weight", "ffn_down_shexp.weight"},
};

const std::vector<std::pair<std::string, std::string>> kGateUpDown = {
    {"gate", "gate_proj"}, {"up", "up_proj"}, {"down", "down_proj"}};

ArchSpec qwen3moe_spec() {
    return {"qwen3moe", {"qwen3_moe"}, kBlockNames, "mlp.experts", kGateUpDown, {"ffn_gate_inp.weight"}, false, false,
            add_mha_metadata, {}, {}};
}

}  // namespace

void write_qwen3moe_gguf(const std::string &dir, const std::string &gguf_path, GgufWeightType type) {
    write_gguf(qwen3moe_spec(), dir, gguf_path, type);
}

void write_qwen3moe_gguf_decoded(const std::string &dir, const std::string &gguf_path, GgufWeightType type) {
    write_gguf(qwen3moe_spec(), dir, gguf_path, type, true);
}

namespace {

ArchSpec mixtral_spec() {
    std::map<std::string, std::string> names = kBlockNames;
    names.erase("mlp.gate.weight");
    names["block_sparse_moe.gate.weight"] = "ffn_gate_inp.weight";
    return {"llama", {"mixtral"}, names, "block_sparse_moe.experts", {{"gate", "w1"}, {"up", "w3"}, {"down", "w2"}},
            {"ffn_gate_inp.weight"}, true, false, add_mha_metadata, {}, {}};
}

}  // namespace

void write_mixtral_gguf(const std::string &dir, const std::string &gguf_path, GgufWeightType type) {
    write_gguf(mixtral_spec(), dir, gguf_path, type);
}

void write_mixtral_gguf_decoded(const std::string &dir, const std::string &gguf_path, GgufWeightType type) {
    write_gguf(mixtral_spec(), dir, gguf_path, type, true);
}

void write_mixtral_gguf_sentencepiece(const std::string &dir, const std::string &gguf_path, GgufWeightType type) {
    write_gguf(mixtral_spec(), dir, gguf_path, type, false, true);
}

namespace {

void write_deepseek2(const std::string &dir, const std::string &gguf_path, GgufWeightType type, bool split_kv_b,
                     bool decoded) {
    // gguf-py's TENSOR_NAMES for DeepSeek-V3's modules (tensor_mapping.py).
    const std::map<std::string, std::string> names = {
        {"input_layernorm.weight", "attn_norm.weight"},
        {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.q_a_proj.weight", "attn_q_a.weight"},
        {"self_attn.q_a_layernorm.weight", "attn_q_a_norm.weight"},
        {"self_attn.q_b_proj.weight", "attn_q_b.weight"},
        {"self_attn.kv_a_proj_with_mqa.weight", "attn_kv_a_mqa.weight"},
        {"self_attn.kv_a_layernorm.weight", "attn_kv_a_norm.weight"},
        {"self_attn.kv_b_proj.weight", "attn_kv_b.weight"},
        {"self_attn.o_proj.weight", "attn_output.weight"},
        {"mlp.gate.weight", "ffn_gate_inp.weight"},
        {"mlp.gate.e_score_correction_bias", "exp_probs_b.bias"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},
        {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"},
        {"mlp.shared_experts.gate_proj.weight", "ffn_gate_shexp.weight"},
        {"mlp.shared_experts.up_proj.weight", "ffn_up_shexp.weight"},
        {"mlp.shared_experts.down_proj.weight", "ffn_down_shexp.weight"},
    };
    write_gguf({"deepseek2", {"deepseek_v3", "kimi_k2"}, names, "mlp.experts", kGateUpDown, {"ffn_gate_inp.weight"},
                false, split_kv_b,
                [split_kv_b](GgufBuilder &b, const nlohmann::json &config, const std::string &a) {
                    add_deepseek2_metadata(b, config, a, split_kv_b);
                },
                {}, {}},
               dir, gguf_path, type, decoded);
}

}  // namespace

void write_deepseek2_gguf(const std::string &dir, const std::string &gguf_path, GgufWeightType type, bool split_kv_b) {
    write_deepseek2(dir, gguf_path, type, split_kv_b, false);
}

void write_deepseek2_gguf_decoded(const std::string &dir, const std::string &gguf_path, GgufWeightType type,
                                  bool split_kv_b) {
    write_deepseek2(dir, gguf_path, type, split_kv_b, true);
}

void write_gpt_oss_gguf(const std::string &dir, const std::string &gguf_path, GgufWeightType type) {
    const std::map<std::string, std::string> names = {
        {"input_layernorm.weight", "attn_norm.weight"},
        {"post_attention_layernorm.weight", "post_attention_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.q_proj.bias", "attn_q.bias"},
        {"self_attn.k_proj.weight", "attn_k.weight"},
        {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.v_proj.bias", "attn_v.bias"},
        {"self_attn.o_proj.weight", "attn_output.weight"},
        {"self_attn.o_proj.bias", "attn_output.bias"},
        {"self_attn.sinks", "attn_sinks.weight"},
        {"mlp.router.weight", "ffn_gate_inp.weight"},
        {"mlp.router.bias", "ffn_gate_inp.bias"},
    };
    write_gguf({"gpt-oss", {"gpt_oss"}, names, "mlp.experts", kGateUpDown, {"ffn_gate_inp.weight"}, false, false,
                add_gpt_oss_metadata, add_gpt_oss_experts, {}},
               dir, gguf_path, type);
}

namespace {

void write_qwen_hybrid(const std::string &dir, const std::string &gguf_path, GgufWeightType type, bool decoded) {
    const nlohmann::json config = read_json(dir + "/config.json");
    const bool next = config.at("model_type") == "qwen3_next";
    write_gguf({next ? "qwen3next" : "qwen35moe", {next ? "qwen3_next" : "qwen3_5_moe_text", "qwen3_5_moe"},
                // conv1d stays F32, as convert_hf_to_gguf.py keeps it (ggml's ssm_conv takes f32 only).
                kQwenHybridNames, "mlp.experts", kGateUpDown, {"ffn_gate_inp.weight", "ssm_conv1d.weight"}, false,
                false, [next](GgufBuilder &b, const nlohmann::json &c, const std::string &a) {
                    add_value(b, a + "expert_feed_forward_length", c, "moe_intermediate_size");
                    add_qwen_hybrid_hyperparameters(b, a, c, !next);
                },
                next ? AddLayer(add_qwen3next_qkvz) : AddLayer(),
                [config, next](const std::string &name, std::vector<int64_t> &shape, std::vector<float> &v) {
                    transform_qwen_hybrid(config, !next, name, shape, v);
                }},
               dir, gguf_path, type, decoded);
}

}  // namespace

void write_qwen_hybrid_gguf(const std::string &dir, const std::string &gguf_path, GgufWeightType type) {
    write_qwen_hybrid(dir, gguf_path, type, false);
}

void write_qwen_hybrid_gguf_decoded(const std::string &dir, const std::string &gguf_path, GgufWeightType type) {
    write_qwen_hybrid(dir, gguf_path, type, true);
}

}  // namespace mst::test
