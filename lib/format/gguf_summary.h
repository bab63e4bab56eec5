// What a GGUF file holds, without loading it as a model: its tensors grouped by role
// (the name without its "blk.N." prefix: attn_q.weight, ffn_up_exps.weight, ...) with the
// ggml types each group uses, and what streaming its routed experts costs per token.
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

struct GgufSummary {
    std::string architecture;  // general.architecture, "" when absent
    uint32_t version = 0;
    uint64_t n_tensors = 0, n_metadata = 0, tensor_bytes = 0;
    std::vector<GgufTensorGroup> groups;  // by name
    int64_t n_moe_layers = 0;             // layers with stacked experts
    int64_t n_experts = 0;                // experts per layer (the stacked tensors' outer dimension)
    int64_t experts_per_token = 0;        // <arch>.expert_used_count, 0 when absent
    uint64_t expert_bytes_total = 0;      // every stacked expert tensor
    // experts_per_token x the bytes of one expert of each MoE layer: what one token reads
    // from the file before any cache hit.
    uint64_t expert_bytes_per_token = 0;
};

// Throws MST_ERR_BAD_FORMAT naming the file and tensor when the stacked experts of a
// layer disagree on their expert count or are not 3-D.
GgufSummary summarize_gguf(const GgufFile &gguf);

}  // namespace mst
