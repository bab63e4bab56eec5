// The Tokenizer entry points for tiktoken checkpoints, and how a checkpoint directory says
// which kind of tokenizer it ships.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <system_error>

#include "core/error.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/read_file.h"
#include "tokenizer/tiktoken_model.h"
#include "tokenizer/tiktoken_ranks.h"
#include "tokenizer/tiktoken_specials.h"
#include "tokenizer/tokenizer.h"

namespace mst {

namespace fs = std::filesystem;

const char *tokenizer_kind_name(TokenizerKind kind) {
    switch (kind) {
    case TokenizerKind::ByteLevelBpe:
        return "byte-level BPE";
    case TokenizerKind::SentencePieceBpe:
        return "SentencePiece BPE";
    case TokenizerKind::Tiktoken:
        return "tiktoken";
    }
    return "unknown";
}

std::unique_ptr<Tokenizer> Tokenizer::load_dir(const std::string &dir) {
    const fs::path root(dir);
    const fs::path json = root / "tokenizer.json";
    const fs::path config = root / "tokenizer_config.json";
    const fs::path ranks = root / "tiktoken.model";
    std::error_code ec;
    // tokenizer.json is complete in itself, so it wins when a checkpoint ships both.
    if (fs::exists(json, ec)) return load(json.string(), config.string());
    if (fs::exists(ranks, ec)) {
        // The rank file alone lacks the special tokens; tokenizer_config.json names them.
        if (!fs::exists(config, ec))
            fail(MST_ERR_IO, "'{}' has tiktoken.model but no tokenizer_config.json, which names its special tokens",
                 dir);
        return load_kimi_tiktoken(ranks.string(), config.string());
    }
    fail(MST_ERR_IO, "'{}' has neither tokenizer.json nor tiktoken.model; moestream needs the tokenizer", dir);
}

std::unique_ptr<Tokenizer> Tokenizer::load_kimi_tiktoken(const std::string &rank_file_path,
                                                         const std::string &tokenizer_config_path) {
    const std::string ranks = read_tokenizer_file(rank_file_path);
    const std::string config = read_tokenizer_file(tokenizer_config_path);
    auto tokenizer = std::unique_ptr<Tokenizer>(new Tokenizer());
    tokenizer->origin_ = rank_file_path;
    tokenizer->config_origin_ = tokenizer_config_path;
    std::vector<std::string> by_rank = parse_tiktoken_ranks(ranks, rank_file_path);
    nlohmann::json config_doc;
    try {
        config_doc = nlohmann::json::parse(config);
    } catch (const nlohmann::json::exception &e) {
        fail(MST_ERR_BAD_FORMAT, "{}: not valid JSON: {}", tokenizer_config_path, e.what());
    }
    tokjson::require_object(config_doc, tokenizer_config_path, "the document");
    std::vector<AddedToken> specials =
        kimi_special_tokens(config_doc, static_cast<int32_t>(by_rank.size()), tokenizer_config_path);
    tokenizer->build_tiktoken(std::move(by_rank), kKimiSplitPattern, std::move(specials), config, true);
    return tokenizer;
}

std::unique_ptr<Tokenizer> Tokenizer::kimi_tiktoken_from_strings(std::string_view rank_file,
                                                                 std::string_view tokenizer_config_json,
                                                                 const std::string &origin_for_errors) {
    auto tokenizer = std::unique_ptr<Tokenizer>(new Tokenizer());
    tokenizer->origin_ = origin_for_errors;
    tokenizer->config_origin_ = origin_for_errors + " (tokenizer_config)";
    std::vector<std::string> by_rank = parse_tiktoken_ranks(rank_file, tokenizer->origin_);
    nlohmann::json config_doc;
    try {
        config_doc = nlohmann::json::parse(tokenizer_config_json);
    } catch (const nlohmann::json::exception &e) {
        fail(MST_ERR_BAD_FORMAT, "{}: not valid JSON: {}", tokenizer->config_origin_, e.what());
    }
    tokjson::require_object(config_doc, tokenizer->config_origin_, "the document");
    std::vector<AddedToken> specials =
        kimi_special_tokens(config_doc, static_cast<int32_t>(by_rank.size()), tokenizer->config_origin_);
    tokenizer->build_tiktoken(std::move(by_rank), kKimiSplitPattern, std::move(specials), tokenizer_config_json,
                              true);
    return tokenizer;
}

std::unique_ptr<Tokenizer> Tokenizer::tiktoken_from_strings(std::string_view rank_file, std::string_view pattern,
                                                            std::vector<AddedToken> special_tokens,
                                                            std::string_view tokenizer_config_json,
                                                            const std::string &origin_for_errors) {
    auto tokenizer = std::unique_ptr<Tokenizer>(new Tokenizer());
    tokenizer->origin_ = origin_for_errors;
    tokenizer->config_origin_ = origin_for_errors + " (tokenizer_config)";
    std::vector<std::string> by_rank = parse_tiktoken_ranks(rank_file, origin_for_errors);
    for (AddedToken &token : special_tokens) token.normalized = false;
    check_special_tokens(special_tokens, static_cast<int32_t>(by_rank.size()), origin_for_errors);
    tokenizer->build_tiktoken(std::move(by_rank), pattern, std::move(special_tokens), tokenizer_config_json,
                              !tokenizer_config_json.empty());
    return tokenizer;
}

void Tokenizer::build_tiktoken(std::vector<std::string> by_rank, std::string_view pattern,
                               std::vector<AddedToken> special_tokens, std::string_view config_json,
                               bool has_config) {
    kind_ = TokenizerKind::Tiktoken;
    model_ = std::make_unique<TiktokenModel>(std::move(by_rank), origin_);
    // tiktoken encodes only the pattern's matches; with the inverted Removed behavior the
    // Split step keeps exactly those (for the usual patterns they cover all text anyway).
    const nlohmann::json split = {{"type", "Split"},
                                  {"pattern", {{"Regex", std::string(pattern)}}},
                                  {"behavior", "Removed"},
                                  {"invert", true}};
    pre_tokenizer_ = PreTokenizer::from_json(split, origin_);
    post_processor_ = PostProcessor::from_json(nullptr, origin_);
    added_ = std::move(special_tokens);
    build_added_matchers();
    build_id_tables();
    read_optional_config(config_json, has_config);
}

}  // namespace mst
