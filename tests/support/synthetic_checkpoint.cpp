#include "synthetic_checkpoint.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "test_paths.h"

namespace mst::test {
namespace {

struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    float scale;  // weights uniform in [-scale, scale]; 0 means all ones (norms)
    uint64_t bytes() const {
        uint64_t n = 2;
        for (int64_t d : shape) n *= uint64_t(d);
        return n;
    }
};

std::vector<Tensor> tensor_list(const SyntheticShape &s) {
    const float in_scale = 1.0f / float(std::sqrt(double(s.hidden)));
    const float ffn_scale = 1.0f / float(std::sqrt(double(s.expert_ffn)));
    std::vector<Tensor> t;
    t.push_back({"model.embed_tokens.weight", {s.vocab, s.hidden}, 1.0f});
    t.push_back({"model.norm.weight", {s.hidden}, 0.0f});
    t.push_back({"lm_head.weight", {s.vocab, s.hidden}, in_scale});
    for (int64_t l = 0; l < s.layers; ++l) {
        const std::string p = fmt::format("model.layers.{}.", l);
        t.push_back({p + "input_layernorm.weight", {s.hidden}, 0.0f});
        t.push_back({p + "post_attention_layernorm.weight", {s.hidden}, 0.0f});
        t.push_back({p + "self_attn.q_proj.weight", {s.heads * s.head_dim, s.hidden}, in_scale});
        t.push_back({p + "self_attn.k_proj.weight", {s.kv_heads * s.head_dim, s.hidden}, in_scale});
        t.push_back({p + "self_attn.v_proj.weight", {s.kv_heads * s.head_dim, s.hidden}, in_scale});
        t.push_back({p + "self_attn.o_proj.weight", {s.hidden, s.heads * s.head_dim}, in_scale});
        t.push_back({p + "self_attn.q_norm.weight", {s.head_dim}, 0.0f});
        t.push_back({p + "self_attn.k_norm.weight", {s.head_dim}, 0.0f});
        t.push_back({p + "mlp.gate.weight", {s.experts, s.hidden}, in_scale});
        for (int64_t e = 0; e < s.experts; ++e) {
            const std::string q = fmt::format("{}mlp.experts.{}.", p, e);
            t.push_back({q + "gate_proj.weight", {s.expert_ffn, s.hidden}, in_scale});
            t.push_back({q + "up_proj.weight", {s.expert_ffn, s.hidden}, in_scale});
            t.push_back({q + "down_proj.weight", {s.hidden, s.expert_ffn}, ffn_scale});
        }
    }
    return t;
}

}  // namespace

uint64_t write_synthetic_qwen3_moe(const std::string &dir, const SyntheticShape &s) {
    namespace fs = std::filesystem;
    const std::vector<Tensor> tensors = tensor_list(s);
    nlohmann::ordered_json header;
    uint64_t offset = 0, expert_bytes = 0;
    for (const Tensor &t : tensors) {
        header[t.name] = {{"dtype", "BF16"}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes()}}};
        offset += t.bytes();
        if (t.name.find(".mlp.experts.") != std::string::npos) expert_bytes += t.bytes();
    }
    std::string text = header.dump();
    text.resize((text.size() + 7) / 8 * 8, ' ');
    std::ofstream out(fs::path(dir) / "model.safetensors", std::ios::binary);
    const uint64_t n = text.size();
    out.write(reinterpret_cast<const char *>(&n), 8);
    out.write(text.data(), std::streamsize(text.size()));
    uint64_t state = s.seed * 0x9E3779B97F4A7C15ull + 1;
    std::vector<uint16_t> buffer;
    for (const Tensor &t : tensors) {
        buffer.resize(t.bytes() / 2);
        for (uint16_t &v : buffer) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            const float u = float(state >> 40) / float(1ull << 24) * 2.0f - 1.0f;
            v = f32_to_bf16(t.scale == 0.0f ? 1.0f : u * t.scale);
        }
        out.write(reinterpret_cast<const char *>(buffer.data()), std::streamsize(t.bytes()));
    }
    if (!out) throw std::runtime_error("cannot write synthetic checkpoint in " + dir);

    const nlohmann::json config = {
        {"architectures", {"Qwen3MoeForCausalLM"}}, {"model_type", "qwen3_moe"},
        {"hidden_size", s.hidden}, {"num_hidden_layers", s.layers}, {"num_attention_heads", s.heads},
        {"num_key_value_heads", s.kv_heads}, {"head_dim", s.head_dim}, {"vocab_size", s.vocab},
        {"intermediate_size", s.expert_ffn * 2}, {"moe_intermediate_size", s.expert_ffn},
        {"num_experts", s.experts}, {"num_experts_per_tok", s.top_k}, {"norm_topk_prob", true},
        {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0}, {"max_position_embeddings", 4096},
        {"tie_word_embeddings", false}, {"mlp_only_layers", nlohmann::json::array()}, {"decoder_sparse_step", 1}};
    std::ofstream(fs::path(dir) / "config.json") << config.dump(2);
    for (const char *f : {"tokenizer.json", "tokenizer_config.json"})
        fs::copy_file(data_path(std::string("tokenizer/") + f), fs::path(dir) / f, fs::copy_options::overwrite_existing);
    return expert_bytes;
}

}  // namespace mst::test
