#include "model/gguf_sentencepiece.h"

#include <algorithm>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace mst {
namespace {

using namespace gguf_token_type;

constexpr std::string_view kSpace = "\xe2\x96\x81";  // "▁", SentencePiece's space

// tokenizer.ggml.scores: one float per token.
std::vector<double> read_scores(const GgufFile &g, size_t n_tokens) {
    const std::string key = "tokenizer.ggml.scores";
    const GgufValue *v = g.find(key);
    if (!v)
        fail(MST_ERR_BAD_FORMAT, "{}: lacks '{}', by which a 'llama' (SentencePiece) vocabulary ranks its merges",
             g.path, key);
    if (v->type != GgufValueType::Array ||
        (v->element_type != GgufValueType::Float32 && v->element_type != GgufValueType::Float64))
        fail(MST_ERR_BAD_FORMAT, "{}: '{}' is not an array of floats", g.path, key);
    if (v->count != n_tokens)
        fail(MST_ERR_BAD_FORMAT, "{}: {} has {} entries, tokenizer.ggml.tokens {}", g.path, key, v->count, n_tokens);
    std::vector<double> scores(n_tokens);
    for (size_t i = 0; i < n_tokens; ++i) scores[i] = v->float_at(i);
    return scores;
}

// A token id named by `key`, checked against the vocabulary; nullopt without the key.
std::optional<size_t> token_id(const GgufFile &g, const char *key, size_t n_tokens) {
    const auto id = g.find_uint(key);
    if (!id) return std::nullopt;
    if (*id >= n_tokens) fail(MST_ERR_BAD_FORMAT, "{}: {} is {}, past the {} tokens", g.path, key, *id, n_tokens);
    return size_t(*id);
}

struct RankedMerge {
    double score;  // of the merged piece
    size_t merged, left, right;
};

// Every split of a normal piece into two normal pieces, the highest-scoring merged piece
// first; pieces of equal score by id, and splits of one piece by their halves' ids, so the
// order is a function of the vocabulary alone.
nlohmann::json ranked_merges(const std::vector<std::string> &tokens, const std::vector<int64_t> &types,
                             const std::vector<double> &scores,
                             const std::unordered_map<std::string_view, size_t> &normal) {
    std::vector<RankedMerge> merges;
    for (size_t id = 0; id < tokens.size(); ++id) {
        const std::string_view piece = tokens[id];
        if (types[id] != kNormal || piece.empty()) continue;
        for (size_t cut = utf8::length_at(piece, 0); cut < piece.size(); cut += utf8::length_at(piece, cut)) {
            const auto left = normal.find(piece.substr(0, cut));
            const auto right = normal.find(piece.substr(cut));
            if (left != normal.end() && right != normal.end())
                merges.push_back({scores[id], id, left->second, right->second});
        }
    }
    std::sort(merges.begin(), merges.end(), [](const RankedMerge &a, const RankedMerge &b) {
        if (a.score != b.score) return a.score > b.score;
        if (a.merged != b.merged) return a.merged < b.merged;
        return a.left != b.left ? a.left < b.left : a.right < b.right;
    });
    nlohmann::json out = nlohmann::json::array();
    for (const RankedMerge &m : merges) out.push_back({tokens[m.left], tokens[m.right]});
    return out;
}

}  // namespace

nlohmann::json gguf_sentencepiece_tokenizer_json(const GgufFile &g, const std::vector<std::string> &tokens,
                                                 const std::vector<int64_t> &types) {
    const std::vector<double> scores = read_scores(g, tokens.size());
    nlohmann::json vocab = nlohmann::json::object(), added = nlohmann::json::array();
    std::unordered_map<std::string_view, size_t> normal;
    for (size_t id = 0; id < tokens.size(); ++id) {
        const int64_t type = types[id];
        if (type == kUnused) continue;  // reserved pieces: never produced by encoding
        if (type == kControl || type == kUserDefined || type == kUnknown)
            added.push_back({{"id", id}, {"content", tokens[id]}, {"single_word", false}, {"lstrip", false},
                             {"rstrip", false}, {"normalized", false}, {"special", type != kUserDefined}});
        if (type == kUserDefined) continue;  // matched whole before the model runs
        if (vocab.contains(tokens[id]))
            fail(MST_ERR_BAD_FORMAT, "{}: tokenizer.ggml.tokens[{}] '{}' is already token {}", g.path, id, tokens[id],
                 vocab[tokens[id]].get<int64_t>());
        vocab[tokens[id]] = id;
        if (type == kNormal) normal.emplace(tokens[id], id);
    }

    std::optional<size_t> unk = token_id(g, "tokenizer.ggml.unknown_token_id", tokens.size());
    if (!unk)
        for (size_t id = 0; id < tokens.size() && !unk; ++id)
            if (types[id] == kUnknown) unk = id;

    const bool add_space_prefix = g.find_bool("tokenizer.ggml.add_space_prefix").value_or(true);
    nlohmann::json normalizers = nlohmann::json::array();
    if (add_space_prefix) normalizers.push_back({{"type", "Prepend"}, {"prepend", kSpace}});
    normalizers.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}});
    nlohmann::json decoders = {{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                               {{"type", "ByteFallback"}},
                               {{"type", "Fuse"}}};
    if (add_space_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});

    // BOS / EOS around the text, as the model was trained on it.
    nlohmann::json single = nlohmann::json::array(), specials = nlohmann::json::object();
    const auto add_special = [&](const char *flag, bool by_default, const char *id_key) {
        if (!g.find_bool(flag).value_or(by_default)) return;
        const std::optional<size_t> id = token_id(g, id_key, tokens.size());
        if (!id) fail(MST_ERR_BAD_FORMAT, "{}: {} is set but {} is missing", g.path, flag, id_key);
        const std::string &text = tokens[*id];
        single.push_back({{"SpecialToken", {{"id", text}, {"type_id", 0}}}});
        specials[text] = {{"id", text}, {"ids", {*id}}, {"tokens", {text}}};
    };
    add_special("tokenizer.ggml.add_bos_token", true, "tokenizer.ggml.bos_token_id");
    single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
    add_special("tokenizer.ggml.add_eos_token", false, "tokenizer.ggml.eos_token_id");

    nlohmann::json t;
    t["version"] = "1.0";
    t["added_tokens"] = added;
    t["normalizer"] = {{"type", "Sequence"}, {"normalizers", normalizers}};
    t["pre_tokenizer"] = nullptr;
    t["post_processor"] = {{"type", "TemplateProcessing"}, {"single", single}, {"special_tokens", specials}};
    t["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
    t["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", unk ? nlohmann::json(tokens[*unk]) : nlohmann::json(nullptr)},
                  {"fuse_unk", true},
                  {"byte_fallback", true},
                  {"vocab", vocab},
                  {"merges", ranked_merges(tokens, types, scores, normal)}};
    return t;
}

}  // namespace mst
