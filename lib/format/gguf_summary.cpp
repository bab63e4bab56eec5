#include "format/gguf_summary.h"

#include <algorithm>
#include <charconv>

#include "core/error.h"

namespace mst {
namespace {

// "blk.12.attn_q.weight" -> (12, "attn_q.weight"); (-1, name) outside the blocks.
std::pair<int64_t, std::string> split_block(const std::string &name) {
    if (name.rfind("blk.", 0) != 0) return {-1, name};
    const size_t dot = name.find('.', 4);
    int64_t layer = -1;
    const auto [end, ec] = std::from_chars(name.data() + 4, name.data() + std::min(dot, name.size()), layer);
    if (dot == std::string::npos || ec != std::errc() || end != name.data() + dot) return {-1, name};
    return {layer, name.substr(dot + 1)};
}

bool is_routed_expert_group(const std::string &group) {
    return group.rfind("ffn_", 0) == 0 && group.find("_exps.") != std::string::npos;
}

bool starts(const std::string &s, const char *prefix) { return s.rfind(prefix, 0) == 0; }
bool has(const std::string &s, const char *part) { return s.find(part) != std::string::npos; }

}  // namespace

const char *gguf_tensor_role_name(GgufTensorRole role) {
    switch (role) {
        case GgufTensorRole::kEmbeddings: return "embeddings";
        case GgufTensorRole::kAttention: return "attention";
        case GgufTensorRole::kLinearAttention: return "linear attention";
        case GgufTensorRole::kRouter: return "router";
        case GgufTensorRole::kSharedExpert: return "shared expert";
        case GgufTensorRole::kRoutedExperts: return "routed experts";
        case GgufTensorRole::kDenseFfn: return "dense FFN";
        case GgufTensorRole::kNorms: return "norms";
        case GgufTensorRole::kLmHead: return "lm_head";
        case GgufTensorRole::kOther: return "other";
    }
    return "other";
}

// Checked in this order: the shared expert's gate (ffn_gate_inp_shexp) is the shared
// expert's, not the router's; a norm inside attention (attn_q_norm, ssm_norm) is a norm.
GgufTensorRole gguf_tensor_role(const std::string &name) {
    const std::string g = split_block(name).second;
    if (is_routed_expert_group(g)) return GgufTensorRole::kRoutedExperts;
    if (has(g, "_shexp")) return GgufTensorRole::kSharedExpert;
    if (starts(g, "ffn_gate_inp.") || starts(g, "exp_probs_b")) return GgufTensorRole::kRouter;
    if (has(g, "norm")) return GgufTensorRole::kNorms;
    if (starts(g, "token_embd")) return GgufTensorRole::kEmbeddings;
    if (starts(g, "output.")) return GgufTensorRole::kLmHead;
    if (starts(g, "attn_")) return GgufTensorRole::kAttention;
    if (starts(g, "ssm_")) return GgufTensorRole::kLinearAttention;
    if (starts(g, "ffn_")) return GgufTensorRole::kDenseFfn;
    return GgufTensorRole::kOther;
}

GgufSummary summarize_gguf(const GgufFile &g) {
    GgufSummary s;
    const GgufValue *arch = g.find("general.architecture");
    if (arch && arch->type == GgufValueType::String) s.architecture = arch->string;
    s.version = g.version;
    s.n_tensors = g.tensors.size();
    s.n_metadata = g.metadata.size();
    if (!s.architecture.empty()) s.experts_per_token = int64_t(g.find_uint(s.architecture + ".expert_used_count").value_or(0));
    s.n_files = std::max<uint64_t>(1, g.find_uint("split.count").value_or(1));

    std::map<std::string, GgufTensorGroup> groups;
    std::map<GgufTensorRole, GgufRoleGroup> roles;
    std::map<int64_t, uint64_t> expert_bytes_by_layer;  // one expert's bytes, per layer
    for (const GgufTensor &t : g.tensors) {
        const auto [layer, group_name] = split_block(t.name);
        GgufTensorGroup &group = groups[group_name];
        group.name = group_name;
        group.n_tensors += 1;
        group.bytes += t.nbytes;
        group.types[ggml_type_name(t.type)] += 1;
        s.tensor_bytes += t.nbytes;
        const GgufTensorRole role = gguf_tensor_role(t.name);
        GgufRoleGroup &by_role = roles.try_emplace(role, GgufRoleGroup{role}).first->second;
        by_role.n_tensors += 1;
        by_role.bytes += t.nbytes;
        by_role.types[ggml_type_name(t.type)] += 1;
        if (layer < 0 || !is_routed_expert_group(group_name)) continue;
        group.routed_experts = true;
        if (t.ne.empty() || t.ne.back() == 0)
            fail(MST_ERR_BAD_FORMAT, "{}: stacked expert tensor '{}' has no expert dimension", g.path, t.name);
        const auto n_experts = int64_t(t.ne.back());
        if (s.n_experts != 0 && n_experts != s.n_experts)
            fail(MST_ERR_BAD_FORMAT, "{}: stacked expert tensor '{}' holds {} experts, others {}", g.path, t.name,
                 n_experts, s.n_experts);
        s.n_experts = n_experts;
        s.expert_bytes_total += t.nbytes;
        expert_bytes_by_layer[layer] += t.nbytes / uint64_t(n_experts);
    }
    for (auto &[name, group] : groups) s.groups.push_back(std::move(group));
    for (auto &[role, group] : roles) s.roles.push_back(std::move(group));
    s.n_moe_layers = int64_t(expert_bytes_by_layer.size());
    for (const auto &[layer, bytes] : expert_bytes_by_layer) s.expert_bytes_per_token += bytes * uint64_t(s.experts_per_token);
    return s;
}

}  // namespace mst
