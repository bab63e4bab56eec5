#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/decoder.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/read_file.h"
#include "tokenizer/utf8.h"

namespace mst {

namespace {

constexpr int64_t kMaxTokenId = int64_t{1} << 24;

nlohmann::json parse_json(std::string_view text, const std::string &origin) {
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception &e) {
        fail(MST_ERR_BAD_FORMAT, "{}: not valid JSON: {}", origin, e.what());
    }
}

// A token named in tokenizer_config.json: a string, {"content": ...}, or null.
std::string config_token(const nlohmann::json &config, const char *key, const std::string &origin) {
    const nlohmann::json *value = tokjson::find(config, key);
    if (!value) return {};
    if (value->is_string()) return value->get<std::string>();
    if (value->is_object()) return tokjson::require_string(*value, "content", origin, key);
    fail(MST_ERR_BAD_FORMAT, "{}: \"{}\" is neither a string nor an object with \"content\"", origin, key);
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string &tokenizer_json_path,
                                           const std::string &tokenizer_config_path) {
    const std::string json_text = read_tokenizer_file(tokenizer_json_path);
    std::string config_text;
    bool has_config = false;
    std::error_code ec;
    if (!tokenizer_config_path.empty() && std::filesystem::exists(tokenizer_config_path, ec)) {
        config_text = read_tokenizer_file(tokenizer_config_path);
        has_config = true;
    }
    auto tokenizer = std::unique_ptr<Tokenizer>(new Tokenizer());
    tokenizer->origin_ = tokenizer_json_path;
    tokenizer->config_origin_ = tokenizer_config_path;
    tokenizer->build(parse_json(json_text, tokenizer_json_path), config_text, has_config);
    return tokenizer;
}

std::unique_ptr<Tokenizer> Tokenizer::from_strings(std::string_view tokenizer_json,
                                                   std::string_view tokenizer_config_json,
                                                   const std::string &origin_for_errors) {
    auto tokenizer = std::unique_ptr<Tokenizer>(new Tokenizer());
    tokenizer->origin_ = origin_for_errors;
    tokenizer->config_origin_ = origin_for_errors + " (tokenizer_config)";
    tokenizer->build(parse_json(tokenizer_json, origin_for_errors), tokenizer_config_json,
                     !tokenizer_config_json.empty());
    return tokenizer;
}

std::unique_ptr<Tokenizer> Tokenizer::from_json(const nlohmann::json &tokenizer_json,
                                                std::string_view tokenizer_config_json,
                                                const std::string &origin_for_errors) {
    auto tokenizer = std::unique_ptr<Tokenizer>(new Tokenizer());
    tokenizer->origin_ = origin_for_errors;
    tokenizer->config_origin_ = origin_for_errors + " (tokenizer_config)";
    tokenizer->build(tokenizer_json, tokenizer_config_json, !tokenizer_config_json.empty());
    return tokenizer;
}

void Tokenizer::build(const nlohmann::json &doc, std::string_view config_json, bool has_config) {
    try {
        tokjson::require_object(doc, origin_, "the document");
        static const nlohmann::json null_value;
        const auto member = [&](const char *key) -> const nlohmann::json & {
            const nlohmann::json *value = tokjson::find(doc, key);
            return value ? *value : null_value;
        };
        model_ = BpeModel::from_json(tokjson::require(doc, "model", origin_, "the document"), origin_);
        normalizer_ = Normalizer::from_json(member("normalizer"), origin_);
        pre_tokenizer_ = PreTokenizer::from_json(member("pre_tokenizer"), origin_);
        post_processor_ = PostProcessor::from_json(member("post_processor"), origin_);
        decoder_ = Decoder::from_json(member("decoder"), origin_);
        parse_added_tokens(member("added_tokens"));
        const auto *bpe = static_cast<const BpeModel *>(model_.get());
        if (bpe->byte_fallback() || decoder_->sentencepiece() || pre_tokenizer_->has_metaspace())
            kind_ = TokenizerKind::SentencePieceBpe;
        build_id_tables();
    } catch (const nlohmann::json::exception &e) {
        // A field of an unexpected JSON type that no explicit check caught.
        fail(MST_ERR_BAD_FORMAT, "{}: unexpected content: {}", origin_, e.what());
    }
    read_optional_config(config_json, has_config);
}

void Tokenizer::read_optional_config(std::string_view config_json, bool has_config) {
    if (!has_config) return;
    try {
        read_config(config_json);
    } catch (const nlohmann::json::exception &e) {
        fail(MST_ERR_BAD_FORMAT, "{}: unexpected content: {}", config_origin_, e.what());
    }
}

void Tokenizer::parse_added_tokens(const nlohmann::json &tokens) {
    if (tokens.is_null()) {
        build_added_matchers();
        return;
    }
    tokjson::require_array(tokens, origin_, "added_tokens");
    added_.reserve(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
        const std::string where = fmt::format("added_tokens[{}]", i);
        const nlohmann::json &entry = tokens[i];
        tokjson::require_object(entry, origin_, where);
        AddedToken token;
        token.content = tokjson::require_string(entry, "content", origin_, where);
        const nlohmann::json &id = tokjson::require(entry, "id", origin_, where);
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > std::numeric_limits<int32_t>::max())
            fail(MST_ERR_BAD_FORMAT, "{}: {}.id is not a token id", origin_, where);
        token.id = static_cast<int32_t>(id.get<int64_t>());
        token.special = tokjson::optional_bool(entry, "special", false, origin_, where);
        token.single_word = tokjson::optional_bool(entry, "single_word", false, origin_, where);
        token.lstrip = tokjson::optional_bool(entry, "lstrip", false, origin_, where);
        token.rstrip = tokjson::optional_bool(entry, "rstrip", false, origin_, where);
        token.normalized = tokjson::optional_bool(entry, "normalized", !token.special, origin_, where);
        // The reference ignores empty added tokens.
        if (token.content.empty()) continue;
        added_.push_back(std::move(token));
    }
    build_added_matchers();
}

void Tokenizer::build_added_matchers() {
    // The reference looks special tokens up first, then the others.
    std::vector<AddedTokenMatcher::Entry> raw, normalized;
    for (int pass = 0; pass < 2; ++pass) {
        for (const AddedToken &token : added_) {
            if (token.special != (pass == 0)) continue;
            if (!token.normalized) raw.push_back({token.content, &token});
            else normalized.push_back({normalizer_ ? normalizer_->apply(token.content) : token.content, &token});
        }
    }
    raw_matcher_ = std::make_unique<AddedTokenMatcher>(std::move(raw));
    normalized_matcher_ = std::make_unique<AddedTokenMatcher>(std::move(normalized));
    for (const AddedToken &token : added_) added_by_content_[token.content] = token.id;
}

void Tokenizer::build_id_tables() {
    int64_t max_id = -1;
    model_->for_each_token([&](const std::string &, int32_t id) { max_id = std::max<int64_t>(max_id, id); });
    for (const AddedToken &token : added_) max_id = std::max<int64_t>(max_id, token.id);
    // Tables are indexed by id, so one absurd id in a damaged file would allocate gigabytes.
    if (max_id >= kMaxTokenId)
        fail(MST_ERR_BAD_FORMAT, "{}: token id {} is implausibly large (limit {})", origin_, max_id, kMaxTokenId - 1);
    const auto size = static_cast<size_t>(max_id + 1);
    texts_.assign(size, std::string());
    bytes_.assign(size, std::string());
    known_.assign(size, false);
    special_.assign(size, false);
    model_->for_each_token([&](const std::string &token, int32_t id) {
        texts_[static_cast<size_t>(id)] = token;
        known_[static_cast<size_t>(id)] = true;
    });
    // An added token's content is what its id decodes from, even where the vocab differs.
    for (const AddedToken &token : added_) {
        texts_[static_cast<size_t>(token.id)] = token.content;
        known_[static_cast<size_t>(token.id)] = true;
        special_[static_cast<size_t>(token.id)] = token.special;
    }
    for (size_t id = 0; id < size; ++id) {
        if (!known_[id]) continue;
        if (decoder_) {
            bytes_[id] = decoder_->token_bytes(texts_[id]);
            continue;
        }
        // tiktoken's ranks are spelled in the byte-level alphabet.
        if (!byte_level::decode_append(texts_[id], bytes_[id])) bytes_[id] = texts_[id];
    }
    // tiktoken writes its special tokens out as they are; only its ranks are byte-spelled.
    if (kind_ == TokenizerKind::Tiktoken)
        for (const AddedToken &token : added_) bytes_[static_cast<size_t>(token.id)] = token.content;
}

void Tokenizer::read_config(std::string_view config_json) {
    const nlohmann::json config = parse_json(config_json, config_origin_);
    tokjson::require_object(config, config_origin_, "the document");
    const auto resolve = [&](const char *key) -> int32_t {
        const std::string token = config_token(config, key, config_origin_);
        if (token.empty()) return -1;
        const std::optional<int32_t> id = token_id(token);
        if (!id) fail(MST_ERR_BAD_FORMAT, "{}: {} \"{}\" is not a token of {}", config_origin_, key, token, origin_);
        return *id;
    };
    eos_id_ = resolve("eos_token");
    bos_id_ = resolve("bos_token");
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const { return encode(text, true); }

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
    std::string repaired;
    if (!utf8::is_valid(text)) {
        repaired = utf8::to_valid(text);
        text = repaired;
    }
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 1);
    std::vector<AddedTokenMatcher::Segment> segments;
    raw_matcher_->split(text, segments);
    for (const AddedTokenMatcher::Segment &segment : segments) {
        if (segment.id >= 0) {
            ids.push_back(segment.id);
            continue;
        }
        const std::string_view piece = text.substr(segment.begin, segment.end - segment.begin);
        const bool at_start = segment.begin == 0;
        if (normalizer_) encode_normalized(normalizer_->apply(piece), at_start, ids);
        else encode_normalized(piece, at_start, ids);
    }
    if (add_special_tokens) return post_processor_->apply(std::move(ids));
    return ids;
}

void Tokenizer::encode_normalized(std::string_view piece, bool at_start, std::vector<int32_t> &ids) const {
    std::vector<AddedTokenMatcher::Segment> segments;
    normalized_matcher_->split(piece, segments);
    std::vector<std::string> words;
    for (const AddedTokenMatcher::Segment &segment : segments) {
        if (segment.id >= 0) {
            ids.push_back(segment.id);
            continue;
        }
        words.clear();
        pre_tokenizer_->split(piece.substr(segment.begin, segment.end - segment.begin), words,
                              at_start && segment.begin == 0);
        for (const std::string &word : words) model_->tokenize(word, ids);
    }
}

void Tokenizer::check_id(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= texts_.size())
        fail(MST_ERR_INVALID_ARGUMENT, "token id {} is out of range: {} has ids 0..{}", id, origin_,
             static_cast<int64_t>(texts_.size()) - 1);
    if (!known_[static_cast<size_t>(id)])
        fail(MST_ERR_INVALID_ARGUMENT, "token id {} names no token in {}", id, origin_);
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
    std::string bytes;
    if (decoder_ && !decoder_->concatenates()) {
        // Decoders like Strip and Metaspace depend on a token's place, so the whole chain runs.
        std::vector<std::string> tokens;
        tokens.reserve(ids.size());
        for (int32_t id : ids) {
            check_id(id);
            tokens.push_back(texts_[static_cast<size_t>(id)]);
        }
        bytes = decoder_->decode(std::move(tokens));
    } else {
        for (int32_t id : ids) {
            check_id(id);
            bytes += bytes_[static_cast<size_t>(id)];
        }
    }
    if (utf8::is_valid(bytes)) return bytes;
    return utf8::to_valid(bytes);
}

const std::string &Tokenizer::token_bytes(int32_t id) const {
    check_id(id);
    return bytes_[static_cast<size_t>(id)];
}

const std::string &Tokenizer::token_text(int32_t id) const {
    check_id(id);
    return texts_[static_cast<size_t>(id)];
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(texts_.size()); }

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
    const auto it = added_by_content_.find(std::string(token));
    if (it != added_by_content_.end()) return it->second;
    return model_->id_of(token);
}

bool Tokenizer::is_special(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < special_.size() && special_[static_cast<size_t>(id)];
}

}  // namespace mst
