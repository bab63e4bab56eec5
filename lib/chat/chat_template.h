// Chat templates as transformers applies them: the model's own Jinja template (from
// chat_template.jinja or tokenizer_config.json's "chat_template", a string or a list of
// named templates) rendered with messages, tools, add_generation_prompt, the special
// tokens and any extra variables (enable_thinking, reasoning_effort, ...).
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mst {
class Checkpoint;
}

namespace mst::chat {

struct ChatInputs {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{"role", "content", ...}]
    nlohmann::ordered_json tools;                                       // null: none (the template sees None)
    nlohmann::ordered_json variables = nlohmann::ordered_json::object(); // bos_token, enable_thinking, ...
    bool add_generation_prompt = true;
    std::time_t now = 0;  // strftime_now's clock; 0 = the current time
};

// Throws mst::Error: MST_ERR_BAD_FORMAT for a template that does not parse,
// MST_ERR_INVALID_ARGUMENT when rendering fails (raise_exception, an undefined value
// used, a limit passed), each naming the template line.
std::string apply_chat_template(std::string_view template_text, const ChatInputs &inputs);

// The template named `name` ("" = the default, or "tool_use" when has_tools and the
// model has one) from a tokenizer_config.json's "chat_template". std::nullopt when the
// config has none; MST_ERR_BAD_FORMAT for a malformed entry, MST_ERR_INVALID_ARGUMENT
// for a name the model lacks (the message lists the names it has).
std::optional<std::string> template_from_tokenizer_config(const nlohmann::json &config, const std::string &name,
                                                          bool has_tools, const std::string &origin);

// The special tokens transformers passes to every template (bos_token, eos_token, ...)
// as a tokenizer_config.json names them.
nlohmann::ordered_json special_tokens_from_tokenizer_config(const nlohmann::json &config);

// A checkpoint's chat template: chat_template.jinja beside the weights (or in a packed
// file's metadata) wins over tokenizer_config.json, as in transformers. MST_ERR_UNSUPPORTED
// naming where it looked when the model has none.
std::string find_chat_template(const Checkpoint &checkpoint, const std::string &name, bool has_tools);

// The checkpoint's tokenizer_config.json, parsed; an empty object if it has none.
nlohmann::json read_tokenizer_config(const Checkpoint &checkpoint);

}  // namespace mst::chat
