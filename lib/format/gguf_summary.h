// What a GGUF file holds, without loading it as a model: its tensors grouped by name (the
// name without its "blk.N." prefix: attn_q.weight, ffn_up_exps.weight, ...) and by role
// (embeddings, attention, router, shared expert, routed experts, ...) with the ggml types
// each group uses, and what streaming its routed experts costs per token.
// `moestream info` prints it for any GGUF file, one of an architecture moestream does not
// run included.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "format/gguf_file.h"

namespace mst {

struct GgufTensorGroup {
    std::string name;                        // "ffn_up_exps.weight", "token_embd.weight"
    uint64_t n_tensors = 0;
    uint64_t bytes = 0;
    std::map<std::string, uint64_t> types;   // ggml type name -> tensors of that type
    bool routed_experts = false;             // stacked per-layer experts (ffn_*_exps.*)
};

// The roles, in the order `info` lists them. kLinearAttention is the Gated DeltaNet of
// Qwen3.5 / Qwen3-Next (ssm_*); kDenseFfn the feed-forward of layers without experts;
// kOther whatever llama.cpp's names put in none of these.
enum class GgufTensorRole {
    kEmbeddings, kAttention, kLinearAttention, kRouter, kSharedExpert, kRoutedExperts, kDenseFfn, kNorms, kLmHead,
    kOther
};
const char *gguf_tensor_role_name(GgufTensorRole role);
// The role of a tensor by its llama.cpp name ("blk.3.ffn_up_shexp.weight", "output.weight").
GgufTensorRole gguf_tensor_role(const std::string &name);

struct GgufRoleGroup {
    GgufTensorRole role;
    uint64_t n_tensors = 0;
    uint64_t bytes = 0;
    std::map<std::string, uint64_t> types;  // ggml type name -> tensors of that type
};

struct GgufSummary {
    std::string architecture;  // general.architecture, "" when absent
    uint32_t version = 0;
    uint64_t n_tensors = 0, n_metadata = 0, tensor_bytes = 0;
    std::vector<GgufTensorGroup> groups;  // by name
    std::vector<GgufRoleGroup> roles;     // by role, in GgufTensorRole's order; only roles present
    uint64_t n_files = 1;                 // shards of a split GGUF (split.count), else 1
    int64_t n_moe_layers = 0;             // layers with stacked experts
    int64_t n_experts = 0;                // experts per layer (the stacked tensors' outer dimension)
    int64_t experts_per_token = 0;        // <arch>.expert_used_count, 0 when absent
    uint64_t expert_bytes_total = 0;      // every stacked expert tensor
    // experts_per_token x the bytes of one expert of each MoE layer: what one token reads
    // from the file before any cache hit.
    uint64_t expert_bytes_per_token = 0;
};

// Throws MST_ERR_BAD_FORMAT naming the file and tensor when the stacked experts of a
// layer disagree on their expert count or are not 3-D. For a split GGUF, `gguf` is the
// first shard with the others' tensors appended (open_gguf_shards, format/gguf_split.h).
GgufSummary summarize_gguf(const GgufFile &gguf);

}  // namespace mst
