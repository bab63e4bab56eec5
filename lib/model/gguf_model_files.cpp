#include "model/gguf_model_files.h"

#include <fmt/ranges.h>

#include <nlohmann/json.hpp>
#include <algorithm>
#include <optional>

#include "core/error.h"
#include "format/gguf_names.h"
#include "model/gguf_sentencepiece.h"
#include "tokenizer/tiktoken_specials.h"
#include "tokenizer/utf8.h"

namespace mst {
namespace {

using namespace gguf_token_type;

// Pre-tokenizers by tokenizer.ggml.pre (the names llama.cpp's converter writes): the split
// patterns of the model's own tokenizer, applied in order, each an isolating Split as in
// its tokenizer.json; whether that tokenizer.json normalizes to NFC; and whether its BPE
// takes a pre-token found whole in the vocabulary as it is (ignore_merges). The patterns
// are the models' (tokenizer.json, or tokenization_kimi.py for Kimi K2), not llama.cpp's
// hand-written rewrites of them, so that the GGUF gives the ids the model was trained on.
struct GgufPreTokenizer {
    const char *name;
    std::vector<std::string_view> splits;
    bool nfc = false;
    bool ignore_merges = false;
};

// Qwen2 and Qwen3 (Qwen3-MoE, Qwen3-Next).
constexpr std::string_view kQwen2Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
// Qwen3.5: Qwen2's, with combining marks (\p{M}) kept inside words; and no NFC, so a
// decomposed accent stays a token of its own.
constexpr std::string_view kQwen35Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// DeepSeek V3 (and R1): digits in threes, runs of CJK ideographs and kana, then the rest.
constexpr std::string_view kDeepSeekV3Splits[] = {
    "\\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
};
// gpt-oss (o200k_harmony), which llama.cpp names after GPT-4o's o200k_base.
constexpr std::string_view kGpt4oSplit =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const std::vector<GgufPreTokenizer> &gguf_pre_tokenizers() {
    static const std::vector<GgufPreTokenizer> table = {
        {"qwen2", {kQwen2Split}, true, false},
        {"qwen35", {kQwen35Split}, false, false},
        {"deepseek-v3", {std::begin(kDeepSeekV3Splits), std::end(kDeepSeekV3Splits)}, false, false},
        {"gpt-4o", {kGpt4oSplit}, false, true},
        // Kimi K2 ships a tiktoken file; its GGUF carries the merges llama.cpp's converter
        // derives from the ranks, and the split pattern is the tiktoken one.
        {"kimi-k2", {kKimiSplitPattern}, false, false},
    };
    return table;
}

// GGUF strings are bytes; the tokenizer.json text made of them must be UTF-8.
void require_utf8(const GgufFile &g, const std::vector<std::string> &strings, const std::string &key) {
    for (size_t i = 0; i < strings.size(); ++i)
        if (!utf8::is_valid(strings[i]))
            fail(MST_ERR_BAD_FORMAT, "{}: {}[{}] is not valid UTF-8", g.path, key, i);
}

// parse_model_config's bound on num_hidden_layers (format/model_config.cpp), checked here
// before the per-layer tables of the metadata are built.
constexpr int64_t kMaxLayers = int64_t(1) << 16;

int64_t require_positive(const GgufFile &g, const std::string &key) {
    const uint64_t v = g.require_uint(key);
    if (v == 0 || v > uint64_t(INT32_MAX)) fail(MST_ERR_BAD_FORMAT, "{}: metadata '{}' is {}, out of range", g.path, key, v);
    return int64_t(v);
}

// The rope_scaling object of {arch}.rope.scaling.* when it says YaRN; nullopt without
// scaling; MST_ERR_UNSUPPORTED naming another scaling type.
std::optional<nlohmann::json> yarn_rope_scaling(const GgufFile &g, const std::string &p) {
    const std::string scaling = g.find_string(p + "rope.scaling.type").value_or("none");
    if (scaling == "none") return std::nullopt;
    if (scaling != "yarn")
        fail(MST_ERR_UNSUPPORTED, "{}: {}rope.scaling.type '{}' is not supported (none or yarn)", g.path, p, scaling);
    nlohmann::json r;
    r["type"] = "yarn";
    r["factor"] = g.require_float(p + "rope.scaling.factor");
    r["original_max_position_embeddings"] = g.require_uint(p + "rope.scaling.original_context_length");
    if (const auto v = g.find_float(p + "rope.scaling.yarn_beta_fast")) r["beta_fast"] = *v;
    if (const auto v = g.find_float(p + "rope.scaling.yarn_beta_slow")) r["beta_slow"] = *v;
    return r;
}

// llama.cpp's expert_gating_func values (gguf-py ExpertGatingFuncType).
constexpr uint64_t kGatingSoftmax = 1, kGatingSigmoid = 2;

// deepseek2's hyperparameters as DeepSeek-V3's config.json names them. Newer conversions
// store MLA as llama.cpp computes it (one KV head of kv_lora_rank + rope, with the true
// head sizes under key_length_mla / value_length_mla); older ones as multi-head.
void deepseek2_config(const GgufFile &g, const std::string &p, nlohmann::json &c) {
    const int64_t n_heads = c["num_attention_heads"].get<int64_t>();
    c["num_key_value_heads"] = n_heads;
    const int64_t rope = require_positive(g, p + "rope.dimension_count");
    c["qk_rope_head_dim"] = rope;
    c["head_dim"] = rope;
    c["kv_lora_rank"] = require_positive(g, p + "attention.kv_lora_rank");
    c["q_lora_rank"] = g.find_uint(p + "attention.q_lora_rank").value_or(0);
    const bool mla = g.find(p + "attention.key_length_mla") != nullptr;
    const std::string k_key = p + (mla ? "attention.key_length_mla" : "attention.key_length");
    const int64_t qk = require_positive(g, k_key);
    if (qk <= rope)
        fail(MST_ERR_BAD_FORMAT, "{}: metadata '{}' = {} leaves no room beside the {} RoPE dimensions", g.path, k_key,
             qk, rope);
    c["qk_nope_head_dim"] = qk - rope;
    c["v_head_dim"] = require_positive(g, p + (mla ? "attention.value_length_mla" : "attention.value_length"));
    c["rope_interleave"] = true;  // llama.cpp runs deepseek2 with ggml's interleaved RoPE on the stored rows

    c["n_routed_experts"] = c["num_experts"];
    c["moe_intermediate_size"] = require_positive(g, p + "expert_feed_forward_length");
    c["intermediate_size"] = g.find_uint(p + "feed_forward_length").value_or(0);
    c["first_k_dense_replace"] = g.find_uint(p + "leading_dense_block_count").value_or(0);
    c["n_shared_experts"] = g.require_uint(p + "expert_shared_count");
    c["routed_scaling_factor"] = g.find_float(p + "expert_weights_scale").value_or(1.0);
    c["norm_topk_prob"] = g.find_bool(p + "expert_weights_norm").value_or(false);
    c["n_group"] = g.find_uint(p + "expert_group_count").value_or(1);
    c["topk_group"] = g.find_uint(p + "expert_group_used_count").value_or(1);
    // llama.cpp reads a file without the key as DeepSeek-V2's softmax router.
    const uint64_t gating = g.find_uint(p + "expert_gating_func").value_or(kGatingSoftmax);
    if (gating != kGatingSigmoid)
        fail(MST_ERR_UNSUPPORTED,
             "{}: {}expert_gating_func is {} ({}); moestream runs deepseek2 with the sigmoid router (2) of "
             "DeepSeek-V3 and Kimi K2",
             g.path, p, gating, gating == kGatingSoftmax ? "softmax, DeepSeek-V2's" : "unknown");
    c["scoring_func"] = "sigmoid";
    c["topk_method"] = "noaux_tc";

    if (auto r = yarn_rope_scaling(g, p)) {
        // convert_hf_to_gguf.py stores 0.1 * mscale_all_dim (llama.cpp divides it back out).
        // It keeps no mscale: DeepSeek-V3 and Kimi K2 set both equal, so that the cos/sin
        // factor cancels and only the softmax scale carries it.
        if (const auto log_mul = g.find_float(p + "rope.scaling.yarn_log_multiplier")) {
            (*r)["mscale_all_dim"] = *log_mul / 0.1;
            (*r)["mscale"] = *log_mul / 0.1;
        }
        c["rope_scaling"] = *r;
    }
}

// gpt-oss: every layer sparse, experts sized by expert_feed_forward_length, attention
// with biases and sinks, sliding-window layers by sliding_window_pattern (an array of
// booleans, or a period n whose first n - 1 layers slide; llama.cpp's default is 2).
void gpt_oss_config(const GgufFile &g, const std::string &p, nlohmann::json &c) {
    const int64_t n_layers = c["num_hidden_layers"].get<int64_t>();
    c["intermediate_size"] = require_positive(g, p + "expert_feed_forward_length");
    c["attention_bias"] = true;
    c["sliding_window"] = require_positive(g, p + "attention.sliding_window");
    const std::string pattern_key = p + "attention.sliding_window_pattern";
    std::vector<bool> sliding(static_cast<size_t>(n_layers));
    const GgufValue *pattern = g.find(pattern_key);
    if (pattern && pattern->type == GgufValueType::Array) {
        if (pattern->element_type != GgufValueType::Bool || pattern->count != uint64_t(n_layers))
            fail(MST_ERR_BAD_FORMAT, "{}: metadata '{}' must be {} booleans, one per layer", g.path, pattern_key,
                 n_layers);
        for (int64_t l = 0; l < n_layers; ++l) sliding[size_t(l)] = pattern->int_at(uint64_t(l)) != 0;
    } else {
        const uint64_t period = g.find_uint(pattern_key).value_or(2);
        for (int64_t l = 0; l < n_layers; ++l) sliding[size_t(l)] = period > 0 && uint64_t(l) % period < period - 1;
    }
    nlohmann::json types = nlohmann::json::array();
    for (const bool s : sliding) types.push_back(s ? "sliding_attention" : "full_attention");
    c["layer_types"] = types;
    if (auto r = yarn_rope_scaling(g, p)) {
        (*r)["truncate"] = false;  // gpt-oss's YaRN keeps the fractional correction range
        c["rope_scaling"] = *r;
    }
}

// qwen35moe / qwen3next: the Gated DeltaNet sizes under ssm.* (Qwen3NextModel's
// set_gguf_parameters), the linear / full layer pattern, partial RoPE as the rotated
// dimensions over the head size, the shared expert's size.
void qwen_hybrid_config(const GgufFile &g, const std::string &p, nlohmann::json &c) {
    const int64_t n_layers = c["num_hidden_layers"].get<int64_t>(), head_dim = c["head_dim"].get<int64_t>();
    c["moe_intermediate_size"] = require_positive(g, p + "expert_feed_forward_length");
    c["intermediate_size"] = g.find_uint(p + "feed_forward_length").value_or(0);
    c["shared_expert_intermediate_size"] = g.find_uint(p + "expert_shared_feed_forward_length").value_or(0);
    c["norm_topk_prob"] = true;  // llama.cpp renormalizes the top-k weights of both
    c["linear_conv_kernel_dim"] = require_positive(g, p + "ssm.conv_kernel");
    c["linear_key_head_dim"] = require_positive(g, p + "ssm.state_size");
    c["linear_num_key_heads"] = require_positive(g, p + "ssm.group_count");
    const int64_t n_v_heads = require_positive(g, p + "ssm.time_step_rank");
    const int64_t inner = require_positive(g, p + "ssm.inner_size");
    if (inner % n_v_heads != 0)
        fail(MST_ERR_BAD_FORMAT, "{}: {}ssm.inner_size {} is not a multiple of {}ssm.time_step_rank {}", g.path, p,
             inner, p, n_v_heads);
    c["linear_num_value_heads"] = n_v_heads;
    c["linear_value_head_dim"] = inner / n_v_heads;

    const std::string recurrent_key = p + "attention.recurrent_layers";
    nlohmann::json types = nlohmann::json::array();
    if (const GgufValue *recurrent = g.find(recurrent_key)) {
        if (recurrent->type != GgufValueType::Array || recurrent->element_type != GgufValueType::Bool ||
            recurrent->count != uint64_t(n_layers))
            fail(MST_ERR_BAD_FORMAT, "{}: metadata '{}' must be {} booleans, one per layer", g.path, recurrent_key,
                 n_layers);
        for (int64_t l = 0; l < n_layers; ++l)
            types.push_back(recurrent->int_at(uint64_t(l)) != 0 ? "linear_attention" : "full_attention");
    } else {
        const int64_t interval = int64_t(g.find_uint(p + "full_attention_interval").value_or(4));
        if (interval < 1) fail(MST_ERR_BAD_FORMAT, "{}: metadata '{}full_attention_interval' is 0", g.path, p);
        for (int64_t l = 0; l < n_layers; ++l)
            types.push_back((l + 1) % interval == 0 ? "full_attention" : "linear_attention");
    }
    c["layer_types"] = types;

    const int64_t rotated = int64_t(g.find_uint(p + "rope.dimension_count").value_or(uint64_t(head_dim) / 4));
    if (rotated < 2 || rotated > head_dim)
        fail(MST_ERR_BAD_FORMAT, "{}: metadata '{}rope.dimension_count' is {}, not within the head size {}", g.path, p,
             rotated, head_dim);
    nlohmann::json rope = {{"rope_type", "default"},
                           {"rope_theta", c["rope_theta"]},
                           {"partial_rotary_factor", double(rotated) / double(head_dim)}};
    // Qwen3.5's interleaved MRoPE: with text only, every section sees the same position.
    const std::vector<int64_t> sections = g.find_int_array(p + "rope.dimension_sections");
    if (!sections.empty()) {
        rope["mrope_interleaved"] = true;
        rope["mrope_section"] = std::vector<int64_t>(sections.begin(), sections.begin() + std::min<size_t>(3, sections.size()));
    }
    c["rope_parameters"] = rope;
}

}  // namespace

std::string gguf_config_json(const GgufFile &g) {
    const std::string arch_name = g.require_string("general.architecture");
    const GgufArchitecture *arch = find_gguf_architecture(arch_name);
    if (!arch) fail(MST_ERR_UNSUPPORTED, "{}: GGUF architecture '{}' is not supported", g.path, arch_name);
    const std::string p = arch_name + ".";
    if (arch->gguf_name == "llama" && !g.find(p + "expert_count"))
        fail(MST_ERR_UNSUPPORTED,
             "{}: a GGUF 'llama' without experts (llama.expert_count) is a dense model; moestream runs 'llama' with "
             "experts (Mixtral)",
             g.path);
    nlohmann::json c;
    c["model_type"] = arch->model_type;
    const int64_t n_layers = require_positive(g, p + "block_count");
    if (n_layers > kMaxLayers)  // before the per-layer loops below
        fail(MST_ERR_BAD_FORMAT, "{}: metadata '{}block_count' is {}, more than the {} layers a model may have", g.path,
             p, n_layers, kMaxLayers);
    const int64_t hidden = require_positive(g, p + "embedding_length");
    const int64_t n_heads = require_positive(g, p + "attention.head_count");
    c["num_hidden_layers"] = n_layers;
    c["hidden_size"] = hidden;
    c["num_attention_heads"] = n_heads;
    c["num_key_value_heads"] = g.find_uint(p + "attention.head_count_kv").value_or(uint64_t(n_heads));
    c["head_dim"] = g.find_uint(p + "attention.key_length").value_or(uint64_t(hidden / n_heads));
    c["rms_norm_eps"] = g.require_float(p + "attention.layer_norm_rms_epsilon");
    c["rope_theta"] = g.find_float(p + "rope.freq_base").value_or(10000.0);
    if (const auto n = g.find_uint(p + "context_length")) c["max_position_embeddings"] = *n;
    const int64_t n_experts = require_positive(g, p + "expert_count");
    c["num_experts"] = n_experts;
    c["num_experts_per_tok"] = require_positive(g, p + "expert_used_count");
    if (arch->gguf_name == "deepseek2") {
        deepseek2_config(g, p, c);
    } else if (arch->gguf_name == "gpt-oss") {
        gpt_oss_config(g, p, c);
    } else if (arch->gguf_name == "qwen35moe" || arch->gguf_name == "qwen3next") {
        qwen_hybrid_config(g, p, c);
    } else if (arch->gguf_name == "llama") {
        // Mixtral: feed_forward_length is each expert's; every layer is sparse.
        c["intermediate_size"] = require_positive(g, p + "feed_forward_length");
    } else {
        const int64_t expert_ff = require_positive(g, p + "expert_feed_forward_length");
        c["moe_intermediate_size"] = expert_ff;
        c["intermediate_size"] = g.find_uint(p + "feed_forward_length").value_or(uint64_t(expert_ff));
        // llama.cpp's qwen3moe always renormalizes the top-k weights (Qwen3-MoE's
        // norm_topk_prob).
        c["norm_topk_prob"] = true;
        // Qwen3-MoE's mlp_only_layers: llama.cpp has no key for them; a layer without a
        // router is dense.
        nlohmann::json dense = nlohmann::json::array();
        for (int64_t l = 0; l < n_layers; ++l)
            if (!g.find_tensor(fmt::format("blk.{}.ffn_gate_inp.weight", l))) dense.push_back(l);
        c["mlp_only_layers"] = dense;
    }
    const GgufTensor *embd = g.find_tensor("token_embd.weight");
    if (!embd || embd->ne.size() != 2)
        fail(MST_ERR_BAD_FORMAT, "{}: the GGUF file has no 2-D tensor 'token_embd.weight'", g.path);
    c["vocab_size"] = embd->ne[1];
    c["tie_word_embeddings"] = g.find_tensor("output.weight") == nullptr;
    if (const auto eos = g.find_uint("tokenizer.ggml.eos_token_id")) c["eos_token_id"] = *eos;
    if (const auto bos = g.find_uint("tokenizer.ggml.bos_token_id")) c["bos_token_id"] = *bos;
    return c.dump();
}

ModelConfig read_gguf_model_config(const GgufFile &g) {
    return parse_model_config(gguf_config_json(g), g.path + " (GGUF metadata)");
}

namespace {

// A "gpt2" vocabulary: byte-level BPE with the split patterns tokenizer.ggml.pre names.
nlohmann::json byte_level_tokenizer_json(const GgufFile &g, const std::vector<std::string> &tokens,
                                         const std::vector<int64_t> &types) {
    const std::string pre_name = g.find_string("tokenizer.ggml.pre").value_or("default");
    const GgufPreTokenizer *pre = nullptr;
    for (const GgufPreTokenizer &candidate : gguf_pre_tokenizers())
        if (pre_name == candidate.name) pre = &candidate;
    if (!pre) {
        std::vector<std::string> known;
        for (const GgufPreTokenizer &candidate : gguf_pre_tokenizers()) known.push_back(candidate.name);
        fail(MST_ERR_UNSUPPORTED, "{}: tokenizer.ggml.pre '{}' is not supported; supported: {}", g.path, pre_name,
             fmt::join(known, ", "));
    }
    const std::vector<std::string> &merges = g.require_string_array("tokenizer.ggml.merges");
    require_utf8(g, merges, "tokenizer.ggml.merges");

    nlohmann::json vocab = nlohmann::json::object(), added = nlohmann::json::array();
    for (size_t id = 0; id < tokens.size(); ++id) {
        const int64_t type = types[id];
        if (type == kUnused) continue;  // padding of the vocabulary up to the embedding's rows
        if (type == kControl || type == kUserDefined)
            added.push_back({{"id", id}, {"content", tokens[id]}, {"single_word", false}, {"lstrip", false},
                             {"rstrip", false}, {"normalized", type != kControl}, {"special", type == kControl}});
        if (type == kUserDefined) continue;  // as transformers holds them: added tokens only
        if (vocab.contains(tokens[id]))
            fail(MST_ERR_BAD_FORMAT, "{}: tokenizer.ggml.tokens[{}] '{}' is already token {}", g.path, id, tokens[id],
                 vocab[tokens[id]].get<int64_t>());
        vocab[tokens[id]] = id;
    }
    const nlohmann::json byte_level = {
        {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
    nlohmann::json t;
    t["version"] = "1.0";
    t["added_tokens"] = added;
    t["normalizer"] = pre->nfc ? nlohmann::json{{"type", "NFC"}} : nlohmann::json(nullptr);
    nlohmann::json pre_tokenizers = nlohmann::json::array();
    for (const std::string_view regex : pre->splits)
        pre_tokenizers.push_back({{"type", "Split"},
                                  {"pattern", {{"Regex", std::string(regex)}}},
                                  {"behavior", "Isolated"},
                                  {"invert", false}});
    pre_tokenizers.push_back(byte_level);
    t["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", pre_tokenizers}};
    t["post_processor"] = byte_level;
    t["decoder"] = byte_level;
    t["model"] = {{"type", "BPE"},          {"dropout", nullptr},        {"unk_token", nullptr},
                  {"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""}, {"fuse_unk", false},
                  {"byte_fallback", false}, {"ignore_merges", pre->ignore_merges},    {"vocab", vocab},
                  {"merges", merges}};
    return t;
}

// tokenizer.ggml.* as a tokenizer.json document, and tokenizer_config.json's text.
struct GgufTokenizerDocument {
    nlohmann::json tokenizer;
    std::string config;
};

GgufTokenizerDocument gguf_tokenizer_document(const GgufFile &g) {
    const std::string model = g.require_string("tokenizer.ggml.model");
    if (model != "gpt2" && model != "llama")
        fail(MST_ERR_UNSUPPORTED,
             "{}: tokenizer.ggml.model '{}' is not supported (moestream reads byte-level BPE 'gpt2' and SentencePiece "
             "'llama' vocabularies)",
             g.path, model);
    const std::vector<std::string> &tokens = g.require_string_array("tokenizer.ggml.tokens");
    require_utf8(g, tokens, "tokenizer.ggml.tokens");
    std::vector<int64_t> types = g.find_int_array("tokenizer.ggml.token_type");
    if (types.empty()) types.assign(tokens.size(), kNormal);
    if (types.size() != tokens.size())
        fail(MST_ERR_BAD_FORMAT, "{}: tokenizer.ggml.token_type has {} entries, tokenizer.ggml.tokens {}", g.path,
             types.size(), tokens.size());
    if (tokens.size() > size_t(INT32_MAX)) fail(MST_ERR_BAD_FORMAT, "{}: too many tokens", g.path);
    for (size_t id = 0; id < tokens.size(); ++id)
        if (types[id] < kNormal || types[id] > kByte)
            fail(MST_ERR_BAD_FORMAT, "{}: tokenizer.ggml.token_type[{}] is {}, not a llama.cpp token type (1..6)",
                 g.path, id, types[id]);
    nlohmann::json t = model == "llama" ? gguf_sentencepiece_tokenizer_json(g, tokens, types)
                                              : byte_level_tokenizer_json(g, tokens, types);

    nlohmann::json config = nlohmann::json::object();
    const auto token_of = [&](const char *key) -> nlohmann::json {
        const auto id = g.find_uint(key);
        if (!id) return nullptr;
        if (*id >= tokens.size())
            fail(MST_ERR_BAD_FORMAT, "{}: {} is {}, past the {} tokens", g.path, key, *id, tokens.size());
        return tokens[size_t(*id)];
    };
    config["eos_token"] = token_of("tokenizer.ggml.eos_token_id");
    config["bos_token"] = token_of("tokenizer.ggml.bos_token_id");
    // tokenizer.chat_template, and tokenizer.chat_template.<name> for named ones, in the
    // list form tokenizer_config.json uses for several.
    const std::string template_key = "tokenizer.chat_template";
    nlohmann::json templates = nlohmann::json::array();
    const auto add_template = [&](const std::string &key, const std::string &name, const std::string &text) {
        if (!utf8::is_valid(key) || !utf8::is_valid(text))
            fail(MST_ERR_BAD_FORMAT, "{}: chat template '{}' is not valid UTF-8", g.path, utf8::to_valid(key));
        templates.push_back({{"name", name}, {"template", text}});
    };
    if (const auto text = g.find_string(template_key)) add_template(template_key, "default", *text);
    for (const auto &[key, value] : g.metadata)
        if (key.starts_with(template_key + ".") && value.type == GgufValueType::String)
            add_template(key, key.substr(template_key.size() + 1), value.string);
    if (templates.size() == 1 && templates[0]["name"] == "default")
        config["chat_template"] = templates[0]["template"];
    else if (!templates.empty())
        config["chat_template"] = templates;
    return {std::move(t), config.dump()};
}

}  // namespace

GgufTokenizerJson gguf_tokenizer_json(const GgufFile &g) {
    GgufTokenizerDocument doc = gguf_tokenizer_document(g);
    return {doc.tokenizer.dump(), std::move(doc.config)};
}

std::unique_ptr<Tokenizer> read_gguf_tokenizer(const GgufFile &g) {
    // From the document itself: printing 150k tokens and merges and parsing them again
    // took as long as building the tokenizer.
    const GgufTokenizerDocument doc = gguf_tokenizer_document(g);
    return Tokenizer::from_json(doc.tokenizer, doc.config, g.path + " (tokenizer.ggml.*)");
}

}  // namespace mst
