#include "format/gguf_names.h"

#include <charconv>
#include <initializer_list>
#include <map>

namespace mst {
namespace {

// Per-block names (after "blk.N."), llama.cpp's LLM_TENSOR_* spellings (gguf-py's
// constants.py TENSOR_NAMES) against the transformers module paths, in pieces that the
// architectures share.
using NameMap = std::map<std::string, std::string, std::less<>>;

const NameMap kAttention = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
};
const NameMap kFfnNorm = {{"ffn_norm.weight", "post_attention_layernorm.weight"}};
const NameMap kPostAttentionNorm = {{"post_attention_norm.weight", "post_attention_layernorm.weight"}};
const NameMap kQkNorms = {
    {"attn_q_norm.weight", "self_attn.q_norm.weight"},
    {"attn_k_norm.weight", "self_attn.k_norm.weight"},
};
const NameMap kRouter = {{"ffn_gate_inp.weight", "mlp.gate.weight"}};
// A dense layer (Qwen3-MoE's mlp_only_layers, DeepSeek's leading ones) under llama.cpp's dense FFN names.
const NameMap kDenseFfn = {
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};

// deepseek2 (DeepSeek-V2/V3, Kimi K2): MLA attention, the shared expert and the sigmoid
// router's correction bias. kv_b_proj comes either as attn_kv_b (older conversions) or
// split into attn_k_b / attn_v_b, which the checkpoint joins back (GgufCheckpoint) under
// the same name.
const NameMap kDeepseek2 = {
    {"attn_q_a.weight", "self_attn.q_a_proj.weight"},
    {"attn_q_a_norm.weight", "self_attn.q_a_layernorm.weight"},
    {"attn_q_b.weight", "self_attn.q_b_proj.weight"},
    {"attn_kv_a_mqa.weight", "self_attn.kv_a_proj_with_mqa.weight"},
    {"attn_kv_a_norm.weight", "self_attn.kv_a_layernorm.weight"},
    {"attn_kv_b.weight", "self_attn.kv_b_proj.weight"},
    {"exp_probs_b.bias", "mlp.gate.e_score_correction_bias"},
    {"ffn_gate_shexp.weight", "mlp.shared_experts.gate_proj.weight"},
    {"ffn_up_shexp.weight", "mlp.shared_experts.up_proj.weight"},
    {"ffn_down_shexp.weight", "mlp.shared_experts.down_proj.weight"},
};

// gpt-oss: attention with biases and sinks, the router with a bias.
const NameMap kGptOss = {
    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.bias", "self_attn.o_proj.bias"},
    {"attn_sinks.weight", "self_attn.sinks"},
    {"ffn_gate_inp.weight", "mlp.router.weight"},
    {"ffn_gate_inp.bias", "mlp.router.bias"},
};

// qwen35moe and qwen3next: Gated DeltaNet layers (ssm_*, attn_qkv / attn_gate), gated
// full attention, a shared expert with a sigmoid gate. What llama.cpp's converter changed
// in their values (A, norms, conv1d, value-head order) is undone in
// format/gguf_derived_tensors.h.
const NameMap kQwenHybrid = {
    {"attn_qkv.weight", "linear_attn.in_proj_qkv.weight"},
    {"attn_gate.weight", "linear_attn.in_proj_z.weight"},
    {"ssm_in.weight", "linear_attn.in_proj_qkvz.weight"},  // older qwen3next conversions
    {"ssm_ba.weight", "linear_attn.in_proj_ba.weight"},
    {"ssm_beta.weight", "linear_attn.in_proj_b.weight"},
    {"ssm_alpha.weight", "linear_attn.in_proj_a.weight"},
    {"ssm_conv1d.weight", "linear_attn.conv1d.weight"},
    {"ssm_dt.bias", "linear_attn.dt_bias"},
    {"ssm_a", "linear_attn.A_log"},
    {"ssm_norm.weight", "linear_attn.norm.weight"},
    {"ssm_out.weight", "linear_attn.out_proj.weight"},
    {"ffn_gate_inp_shexp.weight", "mlp.shared_expert_gate.weight"},
    {"ffn_gate_shexp.weight", "mlp.shared_expert.gate_proj.weight"},
    {"ffn_up_shexp.weight", "mlp.shared_expert.up_proj.weight"},
    {"ffn_down_shexp.weight", "mlp.shared_expert.down_proj.weight"},
};

// The stacked experts' parts: llama.cpp's name after "blk.N." against the per-expert suffix.
const NameMap kExpertParts = {
    {"ffn_gate_exps.weight", ".gate_proj.weight"},
    {"ffn_up_exps.weight", ".up_proj.weight"},
    {"ffn_down_exps.weight", ".down_proj.weight"},
};
// gpt-oss: llama.cpp splits the fused, interleaved gate_up_proj into gate and up experts
// (each [E][I][H] with its own bias [E][I]) and transposes down_proj to [E][H][I].
const NameMap kGptOssExpertParts = {
    {"ffn_gate_exps.weight", ".gate_proj.weight"}, {"ffn_gate_exps.bias", ".gate_proj.bias"},
    {"ffn_up_exps.weight", ".up_proj.weight"},     {"ffn_up_exps.bias", ".up_proj.bias"},
    {"ffn_down_exps.weight", ".down_proj.weight"}, {"ffn_down_exps.bias", ".down_proj.bias"},
};
// `llama` with experts is how llama.cpp stores Mixtral: the router and experts under
// Mixtral's block_sparse_moe (w1 gate, w3 up, w2 down).
const NameMap kMixtralRouter = {{"ffn_gate_inp.weight", "block_sparse_moe.gate.weight"}};
const NameMap kMixtralExpertParts = {
    {"ffn_gate_exps.weight", ".w1.weight"},
    {"ffn_up_exps.weight", ".w3.weight"},
    {"ffn_down_exps.weight", ".w2.weight"},
};

NameMap joined(std::initializer_list<const NameMap *> pieces) {
    NameMap out;
    for (const NameMap *p : pieces) out.insert(p->begin(), p->end());  // the first piece's entry wins
    return out;
}

// One GGUF architecture: what it runs as, and its names.
struct ArchNames {
    GgufArchitecture arch;
    NameMap block;         // after "blk.N."
    NameMap expert_parts;  // stacked expert tensors
    std::string experts;   // the per-expert views' prefix after "model.layers.N"
};

const std::vector<ArchNames> &arch_names() {
    static const std::vector<ArchNames> archs = {
        {{"qwen3moe", "qwen3_moe", false}, joined({&kAttention, &kFfnNorm, &kQkNorms, &kRouter, &kDenseFfn}),
         kExpertParts, ".mlp.experts."},
        // llama.cpp's converter interleaves the rows of attn_q / attn_k per head (GgufArchitecture).
        {{"llama", "mixtral", true}, joined({&kAttention, &kFfnNorm, &kMixtralRouter}), kMixtralExpertParts,
         ".block_sparse_moe.experts."},
        {{"deepseek2", "deepseek_v3", false}, joined({&kAttention, &kFfnNorm, &kDeepseek2, &kRouter, &kDenseFfn}),
         kExpertParts, ".mlp.experts."},
        {{"gpt-oss", "gpt_oss", false}, joined({&kGptOss, &kAttention, &kPostAttentionNorm}), kGptOssExpertParts,
         ".mlp.experts."},
        {{"qwen35moe", "qwen3_5_moe_text", false},
         joined({&kAttention, &kPostAttentionNorm, &kQkNorms, &kQwenHybrid, &kRouter, &kDenseFfn}), kExpertParts,
         ".mlp.experts."},
        {{"qwen3next", "qwen3_next", false},
         joined({&kAttention, &kPostAttentionNorm, &kQkNorms, &kQwenHybrid, &kRouter, &kDenseFfn}), kExpertParts,
         ".mlp.experts."},
    };
    return archs;
}

const ArchNames &names_of(const GgufArchitecture &arch) {
    for (const ArchNames &a : arch_names())
        if (a.arch.gguf_name == arch.gguf_name) return a;
    return arch_names().front();  // unreachable: every GgufArchitecture comes from arch_names()
}

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
    static const std::vector<GgufArchitecture> archs = [] {
        std::vector<GgufArchitecture> out;
        for (const ArchNames &a : arch_names()) out.push_back(a.arch);
        return out;
    }();
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
    const auto &names = names_of(arch).block;
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
    for (const auto &[gguf, hf] : names_of(arch).block)
        if (hf == block->second) return "blk." + std::to_string(block->first) + "." + gguf;
    return std::nullopt;
}

std::optional<GgufStackedExperts> gguf_stacked_experts(const GgufArchitecture &arch, std::string_view name) {
    const auto block = split_block(name);
    if (!block) return std::nullopt;
    const ArchNames &names = names_of(arch);
    const auto it = names.expert_parts.find(block->second);
    if (it == names.expert_parts.end()) return std::nullopt;
    return GgufStackedExperts{block->first, "model.layers." + std::to_string(block->first) + names.experts,
                              it->second};
}

}  // namespace mst
