#include "format/model_config.h"

#include <cmath>
#include <initializer_list>
#include <limits>
#include <utility>

#include "core/error.h"
#include "core/file_io.h"

namespace mst {

namespace {

using nlohmann::json;

// Upper bounds far above any real model. They keep later layers safe to multiply two
// sizes in int64 and to size per-layer or per-expert tables from a config.
constexpr int64_t kMaxDimension = int64_t(1) << 24;
constexpr int64_t kMaxLayers = int64_t(1) << 16;
constexpr int64_t kMaxExperts = int64_t(1) << 20;
constexpr int64_t kMaxPositions = (int64_t(1) << 31) - 1;

// Typed access to one JSON object of config.json. `scope` says where the object sits
// ("" for the top level, "text_config", "text_config.rope_parameters") so that every
// error names the field the way a user finds it in the file. A null value counts as
// absent: published configs write null for "not set" (head_dim, sliding_window, ...).
class Fields {
public:
    Fields(const json &object, const std::string &origin, std::string scope)
        : object_(object), origin_(origin), scope_(std::move(scope)) {}

    const std::string &origin() const { return origin_; }

    // The value at key, or nullptr when absent or null.
    const json *find(const char *key) const {
        if (!object_.is_object()) return nullptr;
        const auto it = object_.find(key);
        return it == object_.end() || it->is_null() ? nullptr : &*it;
    }
    bool has(const char *key) const { return find(key) != nullptr; }

    std::string field(const char *key) const {
        return scope_.empty() ? fmt::format("'{}'", key) : fmt::format("'{}' (in {})", key, scope_);
    }

    [[noreturn]] void wrong_type(const char *key, const char *wanted, const json &value) const {
        fail(MST_ERR_BAD_FORMAT, "{}: config.json field {} must be {}, not {}", origin_, field(key), wanted,
             value.type_name());
    }

    std::optional<int64_t> get_int(const char *key) const {
        const json *value = find(key);
        return value ? std::optional<int64_t>(to_int(key, *value)) : std::nullopt;
    }

    int64_t to_int(const char *key, const json &value) const {
        if (value.is_number_integer() && !value.is_number_unsigned()) return value.get<int64_t>();
        if (value.is_number_unsigned()) {
            const uint64_t v = value.get<uint64_t>();
            if (v > uint64_t(std::numeric_limits<int64_t>::max())) {
                fail(MST_ERR_BAD_FORMAT, "{}: config.json field {} = {} is out of range", origin_, field(key), v);
            }
            return int64_t(v);
        }
        if (value.is_number_float()) {
            // Some writers store whole numbers as floats (4096.0); accept those only.
            const double v = value.get<double>();
            if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.0e18) return int64_t(v);
            fail(MST_ERR_BAD_FORMAT, "{}: config.json field {} must be an integer, not {}", origin_, field(key), v);
        }
        wrong_type(key, "an integer", value);
    }

    std::optional<double> get_number(const char *key) const {
        const json *value = find(key);
        if (!value) return std::nullopt;
        if (!value->is_number()) wrong_type(key, "a number", *value);
        const double v = value->get<double>();
        if (!std::isfinite(v)) fail(MST_ERR_BAD_FORMAT, "{}: config.json field {} is not finite", origin_, field(key));
        return v;
    }

    std::optional<bool> get_bool(const char *key) const {
        const json *value = find(key);
        if (!value) return std::nullopt;
        if (!value->is_boolean()) wrong_type(key, "true or false", *value);
        return value->get<bool>();
    }

    std::optional<std::string> get_string(const char *key) const {
        const json *value = find(key);
        if (!value) return std::nullopt;
        if (!value->is_string()) wrong_type(key, "a string", *value);
        return value->get<std::string>();
    }

    std::vector<std::string> get_string_list(const char *key) const {
        std::vector<std::string> list;
        const json *value = find(key);
        if (!value) return list;
        if (!value->is_array()) wrong_type(key, "a list of strings", *value);
        for (const json &item : *value) {
            if (!item.is_string()) wrong_type(key, "a list of strings", *value);
            list.push_back(item.get<std::string>());
        }
        return list;
    }

    // An integer or a list of integers (eos_token_id), as a list.
    std::vector<int64_t> get_int_list(const char *key, bool allow_scalar) const {
        std::vector<int64_t> list;
        const json *value = find(key);
        if (!value) return list;
        if (allow_scalar && value->is_number()) {
            list.push_back(to_int(key, *value));
            return list;
        }
        if (!value->is_array()) wrong_type(key, allow_scalar ? "an integer or a list of integers" : "a list of integers", *value);
        for (const json &item : *value) {
            if (!item.is_number()) wrong_type(key, "a list of integers", *value);
            list.push_back(to_int(key, item));
        }
        return list;
    }

    // The first of several spellings present, with the spelling used.
    std::optional<int64_t> get_int_any(std::initializer_list<const char *> keys, const char **used) const {
        for (const char *key : keys) {
            if (has(key)) {
                *used = key;
                return get_int(key);
            }
        }
        return std::nullopt;
    }

    int64_t require_int(const char *key) const {
        const auto value = get_int(key);
        if (!value) lacks(key);
        return *value;
    }

    [[noreturn]] void lacks(const char *key) const {
        fail(MST_ERR_BAD_FORMAT, "{}: config.json lacks {}", origin_, field(key));
    }

    // Value checks name the field and the offending value.
    void check_range(const char *key, int64_t value, int64_t min, int64_t max) const {
        if (value < min || value > max) {
            if (min == 1 && value < 1) {
                fail(MST_ERR_BAD_FORMAT, "{}: config.json field {} must be positive, not {}", origin_, field(key),
                     value);
            }
            fail(MST_ERR_BAD_FORMAT, "{}: config.json field {} = {} is outside [{}, {}]", origin_, field(key), value,
                 min, max);
        }
    }

private:
    const json &object_;
    const std::string &origin_;
    std::string scope_;
};

RopeScaling parse_rope_scaling(const Fields &rope) {
    RopeScaling s;
    if (auto type = rope.get_string("rope_type")) {
        s.type = *type;
    } else if (auto old_type = rope.get_string("type")) {
        s.type = *old_type;
    }
    // Qwen2-VL style configs say "mrope" for what transformers treats as default RoPE
    // with sectioned positions (the sections stay in raw).
    if (s.type == "mrope") s.type = "default";
    s.factor = rope.get_number("factor").value_or(s.factor);
    if (s.factor <= 0) {
        fail(MST_ERR_BAD_FORMAT, "{}: config.json field {} must be positive, not {}", rope.origin(),
             rope.field("factor"), s.factor);
    }
    s.original_max_position_embeddings =
        rope.get_int("original_max_position_embeddings").value_or(s.original_max_position_embeddings);
    rope.check_range("original_max_position_embeddings", s.original_max_position_embeddings, 0, kMaxPositions);
    s.beta_fast = rope.get_number("beta_fast").value_or(s.beta_fast);
    s.beta_slow = rope.get_number("beta_slow").value_or(s.beta_slow);
    s.mscale = rope.get_number("mscale").value_or(s.mscale);
    s.mscale_all_dim = rope.get_number("mscale_all_dim").value_or(s.mscale_all_dim);
    s.attention_factor = rope.get_number("attention_factor");
    s.truncate = rope.get_bool("truncate").value_or(s.truncate);
    s.low_freq_factor = rope.get_number("low_freq_factor").value_or(s.low_freq_factor);
    s.high_freq_factor = rope.get_number("high_freq_factor").value_or(s.high_freq_factor);
    return s;
}

// RoPE settings: transformers 5 keeps them all in rope_parameters; older configs have
// a top-level rope_theta (and partial_rotary_factor) and an optional rope_scaling.
void parse_rope(const Fields &text, const std::string &text_scope, ModelConfig &config) {
    const auto object_at = [&](const char *key) -> const json * {
        const json *value = text.find(key);
        if (value && !value->is_object()) text.wrong_type(key, "an object", *value);
        return value;
    };
    const json *parameters = object_at("rope_parameters");
    const json *scaling = object_at("rope_scaling");
    const auto scope_of = [&](const char *key) { return text_scope.empty() ? std::string(key) : text_scope + "." + key; };

    std::optional<double> theta, partial;
    std::string theta_field = text.field("rope_theta");
    if (parameters) {
        const Fields fields(*parameters, text.origin(), scope_of("rope_parameters"));
        config.rope_scaling = parse_rope_scaling(fields);
        theta = fields.get_number("rope_theta");
        if (theta) theta_field = fields.field("rope_theta");
        partial = fields.get_number("partial_rotary_factor");
    } else if (scaling) {
        config.rope_scaling = parse_rope_scaling(Fields(*scaling, text.origin(), scope_of("rope_scaling")));
    }
    config.rope_theta = theta ? *theta : text.get_number("rope_theta").value_or(config.rope_theta);
    config.partial_rotary_factor =
        partial ? *partial : text.get_number("partial_rotary_factor").value_or(config.partial_rotary_factor);
    if (config.rope_theta <= 0) {
        fail(MST_ERR_BAD_FORMAT, "{}: config.json field {} must be positive, not {}", text.origin(), theta_field,
             config.rope_theta);
    }
    if (!(config.partial_rotary_factor > 0 && config.partial_rotary_factor <= 1)) {
        fail(MST_ERR_BAD_FORMAT, "{}: config.json field 'partial_rotary_factor' must be in (0, 1], not {}",
             text.origin(), config.partial_rotary_factor);
    }
}

ModelConfig build_config(const json &root, const std::string &origin) {
    ModelConfig config;
    const Fields outer(root, origin, "");
    const auto outer_type = outer.get_string("model_type");
    if (!outer_type) outer.lacks("model_type");
    config.outer_model_type = *outer_type;

    // Multimodal wrappers nest the language model; its fields are what we run.
    const json *text_object = &root;
    std::string text_scope;
    if (const json *nested = outer.find("text_config")) {
        if (!nested->is_object()) outer.wrong_type("text_config", "an object", *nested);
        text_object = nested;
        text_scope = "text_config";
    }
    const Fields text(*text_object, origin, text_scope);
    // A text_config without its own model_type is described by the wrapper's.
    config.model_type = text.get_string("model_type").value_or(config.outer_model_type);
    // The top-level class names the checkpoint (and so its tensor-name prefix).
    config.architectures = outer.get_string_list("architectures");
    if (config.architectures.empty()) config.architectures = text.get_string_list("architectures");

    config.vocab_size = text.require_int("vocab_size");
    text.check_range("vocab_size", config.vocab_size, 1, kMaxDimension);
    config.hidden_size = text.require_int("hidden_size");
    text.check_range("hidden_size", config.hidden_size, 1, kMaxDimension);
    config.n_layers = text.require_int("num_hidden_layers");
    text.check_range("num_hidden_layers", config.n_layers, 1, kMaxLayers);
    config.n_heads = text.require_int("num_attention_heads");
    text.check_range("num_attention_heads", config.n_heads, 1, kMaxDimension);
    config.n_kv_heads = text.get_int("num_key_value_heads").value_or(config.n_heads);
    text.check_range("num_key_value_heads", config.n_kv_heads, 1, kMaxDimension);
    if (config.n_heads % config.n_kv_heads != 0) {
        fail(MST_ERR_BAD_FORMAT,
             "{}: config.json field {} = {} is not a multiple of {} = {}", origin, text.field("num_attention_heads"),
             config.n_heads, text.field("num_key_value_heads"), config.n_kv_heads);
    }
    config.head_dim = text.get_int("head_dim").value_or(config.hidden_size / config.n_heads);
    text.check_range("head_dim", config.head_dim, 1, kMaxDimension);

    config.intermediate_size = text.get_int("intermediate_size").value_or(0);
    text.check_range("intermediate_size", config.intermediate_size, 0, kMaxDimension);

    const char *experts_key = "num_experts";
    config.n_experts = text.get_int_any({"num_experts", "num_local_experts", "n_routed_experts"}, &experts_key)
                           .value_or(0);
    text.check_range(experts_key, config.n_experts, 0, kMaxExperts);
    const char *topk_key = "num_experts_per_tok";
    config.n_experts_per_tok = text.get_int_any({"num_experts_per_tok", "experts_per_token"}, &topk_key).value_or(0);
    text.check_range(topk_key, config.n_experts_per_tok, 0, kMaxExperts);
    if (config.n_experts > 0 && config.n_experts_per_tok > config.n_experts) {
        fail(MST_ERR_BAD_FORMAT, "{}: config.json field {} = {} exceeds the number of experts {} = {}", origin,
             text.field(topk_key), config.n_experts_per_tok, text.field(experts_key), config.n_experts);
    }
    // Mixtral, gpt-oss and OLMoE size their experts with intermediate_size.
    const auto moe_ffn = text.get_int("moe_intermediate_size");
    config.moe_intermediate_size = moe_ffn ? *moe_ffn : (config.n_experts > 0 ? config.intermediate_size : 0);
    text.check_range("moe_intermediate_size", config.moe_intermediate_size, 0, kMaxDimension);
    const char *shared_key = "n_shared_experts";
    config.n_shared_experts = text.get_int_any({"n_shared_experts", "num_shared_experts"}, &shared_key).value_or(0);
    text.check_range(shared_key, config.n_shared_experts, 0, kMaxExperts);
    config.shared_expert_intermediate_size = text.get_int("shared_expert_intermediate_size").value_or(0);
    text.check_range("shared_expert_intermediate_size", config.shared_expert_intermediate_size, 0, kMaxDimension);
    config.norm_topk_prob = text.get_bool("norm_topk_prob").value_or(false);

    config.rms_norm_eps = text.get_number("rms_norm_eps").value_or(config.rms_norm_eps);
    if (config.rms_norm_eps < 0) {
        fail(MST_ERR_BAD_FORMAT, "{}: config.json field {} must not be negative, not {}", origin,
             text.field("rms_norm_eps"), config.rms_norm_eps);
    }
    parse_rope(text, text_scope, config);
    config.max_position_embeddings = text.get_int("max_position_embeddings").value_or(0);
    text.check_range("max_position_embeddings", config.max_position_embeddings, 0, kMaxPositions);

    // Wrappers may keep these three at the top level only (Qwen3.5 does for tying).
    config.tie_word_embeddings =
        text.get_bool("tie_word_embeddings").value_or(outer.get_bool("tie_word_embeddings").value_or(false));
    config.eos_token_ids = (text.has("eos_token_id") ? text : outer).get_int_list("eos_token_id", true);
    config.bos_token_id = (text.has("bos_token_id") ? text : outer).get_int("bos_token_id");

    config.attention_bias = text.get_bool("attention_bias").value_or(false);
    config.mlp_only_layers = text.get_int_list("mlp_only_layers", false);
    for (const int64_t layer : config.mlp_only_layers) text.check_range("mlp_only_layers", layer, 0, config.n_layers - 1);
    config.decoder_sparse_step = text.get_int("decoder_sparse_step").value_or(1);
    text.check_range("decoder_sparse_step", config.decoder_sparse_step, 1, kMaxLayers);
    config.sliding_window = text.get_int("sliding_window").value_or(0);
    text.check_range("sliding_window", config.sliding_window, 0, kMaxPositions);
    // transformers ignores sliding_window when use_sliding_window is false (Qwen2/3).
    if (!text.get_bool("use_sliding_window").value_or(true)) config.sliding_window = 0;
    config.layer_types = text.get_string_list("layer_types");
    if (!config.layer_types.empty() && int64_t(config.layer_types.size()) != config.n_layers) {
        fail(MST_ERR_BAD_FORMAT, "{}: config.json field {} has {} entries, but {} = {}", origin,
             text.field("layer_types"), config.layer_types.size(), text.field("num_hidden_layers"), config.n_layers);
    }

    config.raw = *text_object;
    config.outer_raw = root;
    return config;
}

}  // namespace

ModelConfig parse_model_config(std::string_view json_text, const std::string &origin_for_errors) {
    json root;
    try {
        root = json::parse(json_text.begin(), json_text.end());
    } catch (const json::exception &e) {
        fail(MST_ERR_BAD_FORMAT, "{}: config.json is not valid JSON: {}", origin_for_errors, e.what());
    }
    if (!root.is_object()) fail(MST_ERR_BAD_FORMAT, "{}: config.json is not a JSON object", origin_for_errors);
    try {
        return build_config(root, origin_for_errors);
    } catch (const json::exception &e) {
        // Every accessor checks types first; this keeps the documented error kind even
        // for a type mismatch one of them might have missed.
        fail(MST_ERR_BAD_FORMAT, "{}: config.json: {}", origin_for_errors, e.what());
    }
}

ModelConfig parse_model_config_file(const std::string &config_json_path) {
    return parse_model_config(read_text_file(config_json_path, kMaxConfigBytes), config_json_path);
}

}  // namespace mst
