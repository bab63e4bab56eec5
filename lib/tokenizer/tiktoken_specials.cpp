#include "tokenizer/tiktoken_specials.h"

#include <charconv>
#include <limits>
#include <map>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/json_fields.h"

namespace mst {

const std::string_view kKimiSplitPattern =
    R"([\p{Han}]+)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*)"
    R"(|\s*[\r\n]+)"
    R"(|\s+(?!\S))"
    R"(|\s+)";

namespace {

int32_t parse_id(const std::string &key, const std::string &origin) {
    int64_t id = -1;
    const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
    if (ec != std::errc() || end != key.data() + key.size() || id < 0 || id > std::numeric_limits<int32_t>::max())
        fail(MST_ERR_BAD_FORMAT, "{}: added_tokens_decoder key \"{}\" is not a token id", origin, key);
    return static_cast<int32_t>(id);
}

}  // namespace

std::vector<AddedToken> kimi_special_tokens(const nlohmann::json &config, int32_t n_ranks,
                                            const std::string &config_origin) {
    std::map<int32_t, AddedToken> by_id;
    if (const nlohmann::json *decoder = tokjson::find(config, "added_tokens_decoder")) {
        tokjson::require_object(*decoder, config_origin, "added_tokens_decoder");
        for (const auto &[key, entry] : decoder->items()) {
            const std::string where = fmt::format("added_tokens_decoder[\"{}\"]", key);
            tokjson::require_object(entry, config_origin, where);
            AddedToken token;
            token.id = parse_id(key, config_origin);
            token.content = tokjson::require_string(entry, "content", config_origin, where);
            if (token.content.empty()) fail(MST_ERR_BAD_FORMAT, "{}: {}.content is empty", config_origin, where);
            // tiktoken matches its special tokens literally wherever they occur.
            token.special = tokjson::optional_bool(entry, "special", true, config_origin, where);
            token.single_word = tokjson::optional_bool(entry, "single_word", false, config_origin, where);
            token.lstrip = tokjson::optional_bool(entry, "lstrip", false, config_origin, where);
            token.rstrip = tokjson::optional_bool(entry, "rstrip", false, config_origin, where);
            token.normalized = false;
            by_id[token.id] = std::move(token);
        }
    }
    for (int32_t k = 0; k < kKimiReservedSpecialTokens; ++k) {
        const int32_t id = n_ranks + k;
        if (by_id.count(id)) continue;
        AddedToken token;
        token.id = id;
        token.content = fmt::format("<|reserved_token_{}|>", id);
        token.special = true;
        by_id[id] = std::move(token);
    }
    std::vector<AddedToken> tokens;
    tokens.reserve(by_id.size());
    for (auto &[id, token] : by_id) tokens.push_back(std::move(token));
    check_special_tokens(tokens, n_ranks, config_origin);
    return tokens;
}

void check_special_tokens(const std::vector<AddedToken> &tokens, int32_t n_ranks, const std::string &origin) {
    std::unordered_map<int32_t, const AddedToken *> by_id;
    std::unordered_map<std::string, const AddedToken *> by_content;
    for (const AddedToken &token : tokens) {
        if (token.id < n_ranks)
            fail(MST_ERR_BAD_FORMAT, "{}: special token \"{}\" has id {}, which clashes with rank {} of the rank file",
                 origin, token.content, token.id, token.id);
        const auto [id_it, new_id] = by_id.emplace(token.id, &token);
        if (!new_id)
            fail(MST_ERR_BAD_FORMAT, "{}: special tokens \"{}\" and \"{}\" clash on id {}", origin,
                 id_it->second->content, token.content, token.id);
        const auto [content_it, new_content] = by_content.emplace(token.content, &token);
        if (!new_content)
            fail(MST_ERR_BAD_FORMAT, "{}: special token \"{}\" is given two ids, {} and {}", origin, token.content,
                 content_it->second->id, token.id);
    }
}

}  // namespace mst
