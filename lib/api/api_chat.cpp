// mst_chat_apply_template / mst_model_chat_template / mst_model_apply_chat_template.
#include <string>

#include "api/guard.h"
#include "api/handles.h"
#include "chat/chat_template.h"

using namespace mst;
using namespace mst::api;

namespace {

using ojson = nlohmann::ordered_json;

mst_chat_template_params default_chat_params() {
    mst_chat_template_params p{};
    p.struct_size = sizeof p;
    p.add_generation_prompt = 1;
    return p;
}

ojson parse_json(const char *text, const std::string &what) {
    ojson j = ojson::parse(text, nullptr, false);
    if (j.is_discarded()) fail(MST_ERR_INVALID_ARGUMENT, "{} is not valid JSON", what);
    return j;
}

chat::ChatInputs make_inputs(const mst_chat_message *messages, size_t n, const mst_chat_template_params &p,
                             ojson variables) {
    require_span(messages, n, "messages", "n_messages");
    chat::ChatInputs in;
    for (size_t i = 0; i < n; ++i) {
        const mst_chat_message &m = messages[i];
        const std::string where = "messages[" + std::to_string(i) + "]";
        if (!m.role) fail(MST_ERR_INVALID_ARGUMENT, "{}.role is NULL", where);
        ojson msg = ojson::object();
        msg["role"] = m.role;
        msg["content"] = m.content ? ojson(m.content) : ojson(nullptr);
        if (m.tool_calls_json) {
            ojson calls = parse_json(m.tool_calls_json, where + ".tool_calls_json");
            if (!calls.is_array()) fail(MST_ERR_INVALID_ARGUMENT, "{}.tool_calls_json must be a JSON array", where);
            msg["tool_calls"] = std::move(calls);
        }
        if (m.tool_call_id) msg["tool_call_id"] = m.tool_call_id;
        if (m.name) msg["name"] = m.name;
        if (m.extra_json) {
            const ojson extra = parse_json(m.extra_json, where + ".extra_json");
            if (!extra.is_object()) fail(MST_ERR_INVALID_ARGUMENT, "{}.extra_json must be a JSON object", where);
            for (const auto &[k, v] : extra.items()) msg[k] = v;
        }
        in.messages.push_back(std::move(msg));
    }
    if (p.tools_json) {
        in.tools = parse_json(p.tools_json, "params->tools_json");
        if (!in.tools.is_array() && !in.tools.is_null())
            fail(MST_ERR_INVALID_ARGUMENT, "params->tools_json must be a JSON array");
    }
    if (p.variables_json) {
        const ojson more = parse_json(p.variables_json, "params->variables_json");
        if (!more.is_object()) fail(MST_ERR_INVALID_ARGUMENT, "params->variables_json must be a JSON object");
        for (const auto &[k, v] : more.items()) variables[k] = v;
    }
    in.variables = std::move(variables);
    in.add_generation_prompt = p.add_generation_prompt != 0;
    in.now = static_cast<std::time_t>(p.now_unix);
    return in;
}

const Checkpoint &checkpoint_of(const mst_model *model) {
    if (!model->impl->checkpoint) fail(MST_ERR_UNSUPPORTED, "the model keeps no checkpoint to read its chat template from");
    return *model->impl->checkpoint;
}

bool has_tools(const mst_chat_template_params &p) {
    if (!p.tools_json) return false;
    const ojson tools = ojson::parse(p.tools_json, nullptr, false);
    return tools.is_array() && !tools.empty();
}

}  // namespace

extern "C" {

void mst_chat_template_default_params(mst_chat_template_params *params) {
    if (params) *params = default_chat_params();
}

mst_status mst_chat_apply_template(const char *template_text, const mst_chat_message *messages, size_t n_messages,
                                   const mst_chat_template_params *params, char *out, size_t capacity, size_t *n_bytes) {
    return guard([&] {
        require_arg(template_text, "template_text");
        require_arg(n_bytes, "n_bytes");
        require_span(out, capacity, "out", "capacity");
        const mst_chat_template_params p = read_params(params, default_chat_params(), "mst_chat_template_params");
        const chat::ChatInputs in = make_inputs(messages, n_messages, p, ojson::object());
        write_text(chat::apply_chat_template(template_text, in), out, capacity, n_bytes);
    });
}

mst_status mst_model_chat_template(const mst_model *model, const char *name, char *out, size_t capacity,
                                   size_t *n_bytes) {
    return guard([&] {
        require_arg(model, "model");
        require_arg(n_bytes, "n_bytes");
        require_span(out, capacity, "out", "capacity");
        write_text(chat::find_chat_template(checkpoint_of(model), name ? name : "", false), out, capacity, n_bytes);
    });
}

mst_status mst_model_apply_chat_template(const mst_model *model, const mst_chat_message *messages, size_t n_messages,
                                         const mst_chat_template_params *params, char *out, size_t capacity,
                                         size_t *n_bytes) {
    return guard([&] {
        require_arg(model, "model");
        require_arg(n_bytes, "n_bytes");
        require_span(out, capacity, "out", "capacity");
        const mst_chat_template_params p = read_params(params, default_chat_params(), "mst_chat_template_params");
        const Checkpoint &checkpoint = checkpoint_of(model);
        const std::string text =
            chat::find_chat_template(checkpoint, p.template_name ? p.template_name : "", has_tools(p));
        const ojson tokens = chat::special_tokens_from_tokenizer_config(chat::read_tokenizer_config(checkpoint));
        const chat::ChatInputs in = make_inputs(messages, n_messages, p, tokens);
        write_text(chat::apply_chat_template(text, in), out, capacity, n_bytes);
    });
}

}  // extern "C"
