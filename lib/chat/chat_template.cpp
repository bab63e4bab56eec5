#include "chat/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "chat/jinja.h"
#include "chat/jinja_text.h"
#include "core/error.h"
#include "format/checkpoint.h"
#include "format/gguf_file.h"
#include "format/packed_format.h"
#include "model/gguf_model_files.h"

namespace mst::chat {
namespace {

namespace fs = std::filesystem;

constexpr const char *kTemplateFile = "chat_template.jinja";

std::optional<std::string> read_text(const fs::path &path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return std::nullopt;
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(MST_ERR_IO, "cannot open '{}'", path.string());
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) fail(MST_ERR_IO, "cannot read '{}'", path.string());
    return text.str();
}

std::string render_with(const jinja::Template &tmpl, const ChatInputs &inputs) {
    // The variables transformers' apply_chat_template passes: messages, tools (None if
    // absent), documents (None), add_generation_prompt, then special tokens and kwargs.
    jinja::Value context = jinja::Value::new_dict();
    context.set("messages", jinja::from_json(inputs.messages));
    context.set("tools", inputs.tools.is_null() ? jinja::Value::none() : jinja::from_json(inputs.tools));
    context.set("documents", jinja::Value::none());
    context.set("add_generation_prompt", jinja::Value::from_bool(inputs.add_generation_prompt));
    for (const auto &[k, v] : inputs.variables.items()) context.set(k, jinja::from_json(v));
    jinja::RenderOptions options;
    options.now = inputs.now;
    return tmpl.render(context, options);
}

}  // namespace

std::string apply_chat_template(std::string_view template_text, const ChatInputs &inputs) {
    if (!inputs.messages.is_array()) fail(MST_ERR_INVALID_ARGUMENT, "the messages must be a JSON array");
    if (!inputs.variables.is_object()) fail(MST_ERR_INVALID_ARGUMENT, "the template variables must be a JSON object");
    const jinja::Template tmpl = jinja::Template::parse(template_text);
    try {
        return render_with(tmpl, inputs);
    } catch (const jinja::Failure &f) {  // from_json: input nested too deeply
        fail(MST_ERR_INVALID_ARGUMENT, "chat template input: {}", f.what());
    }
}

std::optional<std::string> template_from_tokenizer_config(const nlohmann::json &config, const std::string &name,
                                                          bool has_tools, const std::string &origin) {
    if (!config.is_object() || !config.contains("chat_template") || config["chat_template"].is_null()) return std::nullopt;
    const nlohmann::json &entry = config["chat_template"];
    if (entry.is_string()) {
        if (!name.empty() && name != "default")
            fail(MST_ERR_INVALID_ARGUMENT, "{}: the model has one chat template, not one named '{}'", origin, name);
        return entry.get<std::string>();
    }
    if (!entry.is_array()) fail(MST_ERR_BAD_FORMAT, "{}: \"chat_template\" is neither a string nor a list", origin);
    std::string names;
    const std::string *fallback = nullptr;
    const std::string *tool_use = nullptr;
    for (const auto &item : entry) {
        if (!item.is_object() || !item.contains("name") || !item["name"].is_string() || !item.contains("template") ||
            !item["template"].is_string())
            fail(MST_ERR_BAD_FORMAT, "{}: each entry of \"chat_template\" needs a string \"name\" and \"template\"", origin);
        const std::string &item_name = item["name"].get_ref<const std::string &>();
        const std::string &text = item["template"].get_ref<const std::string &>();
        names += (names.empty() ? "'" : ", '") + item_name + "'";
        if (!name.empty() && item_name == name) return text;
        if (item_name == "default") fallback = &text;
        if (item_name == "tool_use") tool_use = &text;
    }
    if (name.empty()) {
        if (has_tools && tool_use) return *tool_use;
        if (fallback) return *fallback;
        fail(MST_ERR_INVALID_ARGUMENT, "{}: the model's chat templates are {}; none is 'default', so name one", origin, names);
    }
    fail(MST_ERR_INVALID_ARGUMENT, "{}: no chat template named '{}' (the model has {})", origin, name, names);
}

nlohmann::ordered_json special_tokens_from_tokenizer_config(const nlohmann::json &config) {
    nlohmann::ordered_json tokens = nlohmann::ordered_json::object();
    if (!config.is_object()) return tokens;
    for (const char *key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
        if (!config.contains(key)) continue;
        const nlohmann::json &t = config[key];
        if (t.is_string()) tokens[key] = t.get<std::string>();
        else if (t.is_object() && t.contains("content") && t["content"].is_string()) tokens[key] = t["content"].get<std::string>();
    }
    return tokens;
}

nlohmann::json read_tokenizer_config(const Checkpoint &checkpoint) {
    std::string text;
    std::string origin;
    if (const GgufFile *gguf = checkpoint.gguf()) {
        text = gguf_tokenizer_json(*gguf).config;  // tokenizer.ggml.* and tokenizer.chat_template
        origin = checkpoint.dir() + " (GGUF metadata)";
    } else if (const PackedContents *packed = checkpoint.packed()) {
        const std::string *stored = packed->find_metadata(packed::kTokenizerConfigKey);
        if (!stored) return nlohmann::json::object();
        text = *stored;
        origin = checkpoint.dir() + ": " + packed::kTokenizerConfigKey;
    } else {
        origin = (fs::path(checkpoint.dir()) / "tokenizer_config.json").string();
        const std::optional<std::string> file = read_text(origin);
        if (!file) return nlohmann::json::object();
        text = *file;
    }
    nlohmann::json config = nlohmann::json::parse(text, nullptr, false);
    if (config.is_discarded() || !config.is_object()) fail(MST_ERR_BAD_FORMAT, "{}: not a JSON object", origin);
    return config;
}

std::string find_chat_template(const Checkpoint &checkpoint, const std::string &name, bool has_tools) {
    const bool want_named = !name.empty() && name != "default";
    if (!want_named && !checkpoint.gguf()) {
        if (const PackedContents *packed = checkpoint.packed()) {
            if (const std::string *text = packed->find_metadata(kTemplateFile)) return *text;
        } else if (std::optional<std::string> text = read_text(fs::path(checkpoint.dir()) / kTemplateFile)) {
            return *text;
        }
    }
    const std::string origin = checkpoint.packed() ? checkpoint.dir() + ": " + packed::kTokenizerConfigKey
                                                   : (fs::path(checkpoint.dir()) / "tokenizer_config.json").string();
    if (std::optional<std::string> text = template_from_tokenizer_config(read_tokenizer_config(checkpoint), name, has_tools, origin))
        return *text;
    fail(MST_ERR_UNSUPPORTED, "{}: the model has no chat template ({} nor a \"chat_template\" in tokenizer_config.json)",
         checkpoint.dir(), kTemplateFile);
}

}  // namespace mst::chat
