// llama.cpp's tensor names (token_embd, blk.N.attn_q, blk.N.ffn_gate_exps, ...) mapped to
// the Hugging Face names moestream's architectures look up, per GGUF architecture. A
// GGUF file then opens as a Checkpoint like any other: its tensors under their Hugging
// Face names, and each stacked expert tensor [E][rows][cols] cut into E per-expert views
// (<experts prefix>.<e>.<part>.weight) that point into it, so an expert is read as three
// byte ranges of the file.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mst {

struct GgufArchitecture {
    std::string gguf_name;   // general.architecture, e.g. "qwen3moe"
    std::string model_type;  // the config.json model_type it runs as, e.g. "qwen3_moe"
    // llama.cpp's converter reorders the rows of attn_q / attn_k of `llama` models within
    // each head (from transformers' rotate-half RoPE layout to ggml's interleaved one);
    // moestream computes in the transformers layout, so the rows are put back when read.
    bool interleaved_qk_rows = false;
};

// The GGUF architectures moestream runs.
const std::vector<GgufArchitecture> &gguf_architectures();
// The entry for general.architecture `name`, or nullptr.
const GgufArchitecture *find_gguf_architecture(std::string_view name);

// A stacked expert tensor of a layer: blk.N.ffn_{gate,up,down}_exps.weight, [E][rows][cols],
// or (gpt-oss) the stacked biases blk.N.ffn_{gate,up,down}_exps.bias, [E][rows].
struct GgufStackedExperts {
    int64_t layer = 0;
    std::string part_prefix;  // "model.layers.N.mlp.experts." (an expert number follows)
    std::string part_suffix;  // ".gate_proj.weight"
};

// The Hugging Face name of GGUF tensor `name` for `arch`, or nullopt for a name the
// architecture does not know (kept under its GGUF name; nothing looks it up).
std::optional<std::string> gguf_to_hf_name(const GgufArchitecture &arch, std::string_view name);
// The inverse: the GGUF name of Hugging Face tensor `hf_name` (a non-expert tensor), or
// nullopt for one the architecture has no GGUF name for. For writing GGUF files.
std::optional<std::string> hf_to_gguf_name(const GgufArchitecture &arch, std::string_view hf_name);
// For a stacked expert tensor: where its per-expert views go; nullopt otherwise.
std::optional<GgufStackedExperts> gguf_stacked_experts(const GgufArchitecture &arch, std::string_view name);

}  // namespace mst
