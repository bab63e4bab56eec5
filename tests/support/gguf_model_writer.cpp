#include "gguf_model_writer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "core/dtype.h"
#include "format/checkpoint.h"
#include "gguf_builder.h"

namespace mst::test {
namespace {

nlohmann::json read_json(const std::string &path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error("cannot read " + path);
    return nlohmann::json::parse(f);
}

std::string encode(const std::vector<float> &values, GgufWeightType type) {
    std::string out;
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
        case GgufWeightType::Q4_1:
            out = quantize_q4_1(values.data(), values.size());
            break;
    }
    return out;
}

uint32_t ggml_of(GgufWeightType type) {
    switch (type) {
        case GgufWeightType::F32: return ggml_type::F32;
        case GgufWeightType::F16: return ggml_type::F16;
        case GgufWeightType::BF16: return ggml_type::BF16;
        case GgufWeightType::Q8_0: return ggml_type::Q8_0;
        case GgufWeightType::Q4_1: return ggml_type::Q4_1;
    }
    return ggml_type::F32;
}

// general.file_type holds llama.cpp's llama_ftype (LLAMA_FTYPE_MOSTLY_*), whose numbers
// differ from the ggml types'.
uint32_t llama_ftype_of(GgufWeightType type) {
    switch (type) {
        case GgufWeightType::F32: return 0;
        case GgufWeightType::F16: return 1;
        case GgufWeightType::Q4_1: return 3;
        case GgufWeightType::Q8_0: return 7;
        case GgufWeightType::BF16: return 32;
    }
    return 0;
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
    const nlohmann::json tok = read_json(dir + "/tokenizer.json");
    std::vector<std::string> tokens(static_cast<size_t>(vocab_size));
    std::vector<int32_t> types(static_cast<size_t>(vocab_size), 5);  // UNUSED until named
    for (const auto &[text, id] : tok.at("model").at("vocab").items()) {
        tokens.at(id.get<size_t>()) = text;
        types.at(id.get<size_t>()) = 1;  // NORMAL
    }
    for (const auto &added : tok.at("added_tokens")) {
        const auto id = added.at("id").get<size_t>();
        tokens.at(id) = added.at("content").get<std::string>();
        types.at(id) = added.at("special").get<bool>() ? 3 : 4;  // CONTROL : USER_DEFINED
    }
    // As convert_hf_to_gguf.py pads a vocabulary smaller than the embedding.
    for (size_t id = 0; id < tokens.size(); ++id)
        if (types[id] == 5) tokens[id] = fmt::format("[PAD{}]", id);
    std::vector<std::string> merges;
    for (const auto &m : tok.at("model").at("merges"))
        merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
    b.add_string("tokenizer.ggml.model", "gpt2");
    b.add_string("tokenizer.ggml.pre", "qwen2");
    b.add_string_array("tokenizer.ggml.tokens", tokens);
    b.add_i32_array("tokenizer.ggml.token_type", types);
    b.add_string_array("tokenizer.ggml.merges", merges);
    const nlohmann::json tc = read_json(dir + "/tokenizer_config.json");
    const auto id_of = [&](const nlohmann::json &v) -> int64_t {
        if (!v.is_string()) return -1;
        for (size_t id = 0; id < tokens.size(); ++id)
            if (tokens[id] == v.get<std::string>()) return int64_t(id);
        return -1;
    };
    if (const int64_t eos = id_of(tc.value("eos_token", nlohmann::json())); eos >= 0)
        b.add_u32("tokenizer.ggml.eos_token_id", uint32_t(eos));
    if (const int64_t bos = id_of(tc.value("bos_token", nlohmann::json())); bos >= 0)
        b.add_u32("tokenizer.ggml.bos_token_id", uint32_t(bos));
    if (const int64_t pad = id_of(tc.value("pad_token", nlohmann::json())); pad >= 0)
        b.add_u32("tokenizer.ggml.padding_token_id", uint32_t(pad));
    b.add_bool("tokenizer.ggml.add_bos_token", tc.value("add_bos_token", false));
}

}  // namespace

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

std::string quantize_q4_1(const float *x, size_t n) {
    if (n % 32 != 0) throw std::invalid_argument("quantize_q4_1: length is not a multiple of 32");
    std::string out;
    out.reserve(n / 32 * 20);
    const auto put_f16 = [&](float v) {
        const uint16_t h = f32_to_f16(v);
        out.push_back(char(h & 0xff));
        out.push_back(char(h >> 8));
    };
    for (size_t b = 0; b < n; b += 32) {
        const auto [lo, hi] = std::minmax_element(x + b, x + b + 32);
        const float d = (*hi - *lo) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        put_f16(d);
        put_f16(*lo);
        const auto code = [&](size_t j) { return std::min(15, int((x[b + j] - *lo) * id + 0.5f)); };
        for (size_t j = 0; j < 16; ++j) out.push_back(char(code(j) | (code(j + 16) << 4)));
    }
    return out;
}

namespace {

struct ArchSpec {
    std::string arch;                    // general.architecture
    std::string model_type;              // the config.json's
    std::string experts;                 // "mlp.experts" | "block_sparse_moe.experts"
    std::vector<std::pair<std::string, std::string>> parts;  // gguf stacked part, HF part
    std::string router;                  // HF name of the router within a layer
    bool permute_qk = false;
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

void write_gguf(const ArchSpec &spec, const std::string &dir, const std::string &gguf_path, GgufWeightType type) {
    const nlohmann::json config = read_json(dir + "/config.json");
    if (config.at("model_type") != spec.model_type) throw std::runtime_error(dir + " is not a " + spec.model_type + " checkpoint");
    const auto ckpt = Checkpoint::open(dir);
    const int64_t n_layers = config.at("num_hidden_layers"), hidden = config.at("hidden_size");
    const int64_t n_heads = config.at("num_attention_heads"), n_kv_heads = config.at("num_key_value_heads");
    const int64_t n_experts = config.contains("num_experts") ? config.at("num_experts").get<int64_t>()
                                                             : config.at("num_local_experts").get<int64_t>();
    const double theta = config.contains("rope_parameters") ? config["rope_parameters"].at("rope_theta").get<double>()
                                                            : config.value("rope_theta", 10000.0);

    const GgufWeightType dense_type = type == GgufWeightType::Q4_1 ? GgufWeightType::Q8_0 : type;
    GgufBuilder b;
    const std::string a = spec.arch + ".";
    b.add_string("general.architecture", spec.arch);
    b.add_string("general.name", "moestream test model");
    b.add_u32(a + "block_count", uint32_t(n_layers));
    b.add_u32(a + "context_length", config.at("max_position_embeddings").get<uint32_t>());
    b.add_u32(a + "embedding_length", uint32_t(hidden));
    b.add_u32(a + "feed_forward_length", config.at("intermediate_size").get<uint32_t>());
    b.add_u32(a + "attention.head_count", uint32_t(n_heads));
    b.add_u32(a + "attention.head_count_kv", uint32_t(n_kv_heads));
    b.add_f32(a + "rope.freq_base", float(theta));
    b.add_f32(a + "attention.layer_norm_rms_epsilon", config.at("rms_norm_eps").get<float>());
    b.add_u32(a + "expert_count", uint32_t(n_experts));
    b.add_u32(a + "expert_used_count", config.at("num_experts_per_tok").get<uint32_t>());
    const int64_t head_dim = config.value("head_dim", hidden / n_heads);
    b.add_u32(a + "attention.key_length", uint32_t(head_dim));
    b.add_u32(a + "attention.value_length", uint32_t(head_dim));
    b.add_u32(a + "rope.dimension_count", uint32_t(head_dim));
    if (config.contains("moe_intermediate_size"))
        b.add_u32(a + "expert_feed_forward_length", config.at("moe_intermediate_size").get<uint32_t>());
    b.add_u32("general.file_type", llama_ftype_of(type));
    add_vocabulary(b, dir, config.at("vocab_size").get<int64_t>());

    // One tensor: 1-D ones and the router in F32, as llama.cpp keeps them.
    const auto add = [&](const std::string &gguf_name, const TensorInfo &t, bool keep_f32, int64_t permute_heads = 0) {
        const GgufWeightType wt = keep_f32 || t.shape.size() < 2 ? GgufWeightType::F32 : dense_type;
        std::vector<uint64_t> ne(t.shape.rbegin(), t.shape.rend());
        std::vector<float> values = ckpt->read_f32(t);
        if (permute_heads > 0) values = permute_rows(values, t.shape[0], t.shape[1], permute_heads);
        b.add_tensor(gguf_name, ggml_of(wt), ne, encode(values, wt));
    };
    add("token_embd.weight", ckpt->require("model.embed_tokens.weight"), false);
    for (int64_t l = 0; l < n_layers; ++l) {
        const std::string hf = fmt::format("model.layers.{}.", l), gg = fmt::format("blk.{}.", l);
        for (const auto &[hf_name, gguf_name] : kBlockNames) {
            const std::string name = hf_name == "mlp.gate.weight" ? spec.router : hf_name;
            int64_t heads = 0;
            if (spec.permute_qk && gguf_name == "attn_q.weight") heads = n_heads;
            if (spec.permute_qk && gguf_name == "attn_k.weight") heads = n_kv_heads;
            if (const TensorInfo *t = ckpt->find(hf + name)) add(gg + gguf_name, *t, gguf_name == "ffn_gate_inp.weight", heads);
        }
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
            b.add_tensor(fmt::format("{}ffn_{}_exps.weight", gg, part), ggml_of(type),
                         {uint64_t(shape[1]), uint64_t(shape[0]), uint64_t(n_experts)}, encode(stacked, type));
        }
    }
    add("output_norm.weight", ckpt->require("model.norm.weight"), true);
    if (const TensorInfo *lm = ckpt->find("lm_head.weight")) add("output.weight", *lm, false);
    b.write(gguf_path);
}

}  // namespace

void write_qwen3moe_gguf(const std::string &dir, const std::string &gguf_path, GgufWeightType type) {
    write_gguf({"qwen3moe", "qwen3_moe", "mlp.experts", {{"gate", "gate_proj"}, {"up", "up_proj"}, {"down", "down_proj"}},
                "mlp.gate.weight", false},
               dir, gguf_path, type);
}

void write_mixtral_gguf(const std::string &dir, const std::string &gguf_path, GgufWeightType type) {
    write_gguf({"llama", "mixtral", "block_sparse_moe.experts", {{"gate", "w1"}, {"up", "w3"}, {"down", "w2"}},
                "block_sparse_moe.gate.weight", true},
               dir, gguf_path, type);
}

}  // namespace mst::test
