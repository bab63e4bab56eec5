#include "format/gguf_names.h"

#include <charconv>
#include <map>

namespace mst {
namespace {

// Per-block names (after "blk.N."), llama.cpp's LLM_TENSOR_* spellings (gguf-py's
// constants.py TENSOR_NAMES) against the transformers module paths.
using NameMap = std::map<std::string, std::string, std::less<>>;

const NameMap &qwen3moe_block_names() {
    static const NameMap names = {
        {"attn_norm.weight", "input_layernorm.weight"},
        {"ffn_norm.weight", "post_attention_layernorm.weight"},
        {"attn_q.weight", "self_attn.q_proj.weight"},
        {"attn_k.weight", "self_attn.k_proj.weight"},
        {"attn_v.weight", "self_attn.v_proj.weight"},
        {"attn_output.weight", "self_attn.o_proj.weight"},
        {"attn_q_norm.weight", "self_attn.q_norm.weight"},
        {"attn_k_norm.weight", "self_attn.k_norm.weight"},
        {"ffn_gate_inp.weight", "mlp.gate.weight"},
        // A dense layer (Qwen3-MoE's mlp_only_layers) under llama.cpp's dense FFN names.
        {"ffn_gate.weight", "mlp.gate_proj.weight"},
        {"ffn_up.weight", "mlp.up_proj.weight"},
        {"ffn_down.weight", "mlp.down_proj.weight"},
    };
    return names;
}

const NameMap &qwen3moe_expert_parts() {
    static const NameMap parts = {
        {"ffn_gate_exps.weight", ".gate_proj.weight"},
        {"ffn_up_exps.weight", ".up_proj.weight"},
        {"ffn_down_exps.weight", ".down_proj.weight"},
    };
    return parts;
}

// `llama` with experts is how llama.cpp stores Mixtral: its block names, the router and
// experts under Mixtral's block_sparse_moe (w1 gate, w3 up, w2 down).
const NameMap &mixtral_block_names() {
    static const NameMap names = {
        {"attn_norm.weight", "input_layernorm.weight"},
        {"ffn_norm.weight", "post_attention_layernorm.weight"},
        {"attn_q.weight", "self_attn.q_proj.weight"},
        {"attn_k.weight", "self_attn.k_proj.weight"},
        {"attn_v.weight", "self_attn.v_proj.weight"},
        {"attn_output.weight", "self_attn.o_proj.weight"},
        {"ffn_gate_inp.weight", "block_sparse_moe.gate.weight"},
    };
    return names;
}

const NameMap &mixtral_expert_parts() {
    static const NameMap parts = {
        {"ffn_gate_exps.weight", ".w1.weight"},
        {"ffn_up_exps.weight", ".w3.weight"},
        {"ffn_down_exps.weight", ".w2.weight"},
    };
    return parts;
}

bool is_llama(const GgufArchitecture &arch) { return arch.gguf_name == "llama"; }

// "blk.N.rest" -> (N, rest).
std::optional<std::pair<int64_t, std::string_view>> split_block(std::string_view name) {
    static constexpr std::string_view kPrefix = "blk.";
    if (name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
    name.remove_prefix(kPrefix.size());
    const size_t dot = name.find('.');
    if (dot == 0 || dot == std::string_view::npos) return std::nullopt;
    int64_t layer = -1;
    const auto [end, ec] = std::from_chars(name.data(), name.data() + dot, layer);
    if (ec != std::errc() || end != name.data() + dot || layer < 0) return std::nullopt;
    return std::make_pair(layer, name.substr(dot + 1));
}

}  // namespace

const std::vector<GgufArchitecture> &gguf_architectures() {
    static const std::vector<GgufArchitecture> archs = {{"qwen3moe", "qwen3_moe", false}, {"llama", "mixtral", true}};
    return archs;
}

const GgufArchitecture *find_gguf_architecture(std::string_view name) {
    for (const GgufArchitecture &a : gguf_architectures())
        if (a.gguf_name == name) return &a;
    return nullptr;
}

std::optional<std::string> gguf_to_hf_name(const GgufArchitecture &arch, std::string_view name) {
    if (name == "token_embd.weight") return "model.embed_tokens.weight";
    if (name == "output_norm.weight") return "model.norm.weight";
    if (name == "output.weight") return "lm_head.weight";
    const auto block = split_block(name);
    if (!block) return std::nullopt;
    const auto &names = is_llama(arch) ? mixtral_block_names() : qwen3moe_block_names();
    const auto it = names.find(block->second);
    if (it == names.end()) return std::nullopt;
    return "model.layers." + std::to_string(block->first) + "." + it->second;
}

std::optional<std::string> hf_to_gguf_name(const GgufArchitecture &arch, std::string_view hf_name) {
    static const std::pair<std::string_view, std::string_view> kTopLevel[] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"}};
    for (const auto &[hf, gguf] : kTopLevel)
        if (hf_name == hf) return std::string(gguf);
    static constexpr std::string_view kPrefix = "model.layers.";
    if (hf_name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
    const std::string as_block = "blk." + std::string(hf_name.substr(kPrefix.size()));
    const auto block = split_block(as_block);  // views into as_block
    if (!block) return std::nullopt;
    for (const auto &[gguf, hf] : is_llama(arch) ? mixtral_block_names() : qwen3moe_block_names())
        if (hf == block->second) return "blk." + std::to_string(block->first) + "." + gguf;
    return std::nullopt;
}

std::optional<GgufStackedExperts> gguf_stacked_experts(const GgufArchitecture &arch, std::string_view name) {
    const auto block = split_block(name);
    if (!block) return std::nullopt;
    const auto &parts = is_llama(arch) ? mixtral_expert_parts() : qwen3moe_expert_parts();
    const auto it = parts.find(block->second);
    if (it == parts.end()) return std::nullopt;
    const char *experts = is_llama(arch) ? ".block_sparse_moe.experts." : ".mlp.experts.";
    return GgufStackedExperts{block->first, "model.layers." + std::to_string(block->first) + experts, it->second};
}

}  // namespace mst
