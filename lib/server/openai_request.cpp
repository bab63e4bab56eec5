#include "server/openai_request.h"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

namespace mst::server {
namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string &param, const std::string &message) { throw RequestError(400, message, param); }

json parse_body(const std::string &body) {
    json v = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (v.is_discarded()) throw RequestError(400, "the request body is not valid JSON", "", "invalid_json");
    if (!v.is_object()) throw RequestError(400, "the request body must be a JSON object", "", "invalid_json");
    return v;
}

// The field, or nullptr when absent or null (OpenAI treats null as "not given").
const json *field(const json &o, const char *key) {
    const auto it = o.find(key);
    return it == o.end() || it->is_null() ? nullptr : &*it;
}

std::string type_name(const json &v) { return v.type_name(); }

std::string string_field(const json &o, const char *key, const std::string &where) {
    const json *v = field(o, key);
    if (!v) return "";
    if (!v->is_string()) bad(where + key, fmt::format("'{}{}' must be a string, not {}", where, key, type_name(*v)));
    return v->get<std::string>();
}

bool bool_field(const json &o, const char *key, bool fallback) {
    const json *v = field(o, key);
    if (!v) return fallback;
    if (!v->is_boolean()) bad(key, fmt::format("'{}' must be a boolean, not {}", key, type_name(*v)));
    return v->get<bool>();
}

double number_field(const json &o, const char *key, double fallback, double lo, double hi) {
    const json *v = field(o, key);
    if (!v) return fallback;
    if (!v->is_number()) bad(key, fmt::format("'{}' must be a number, not {}", key, type_name(*v)));
    const double x = v->get<double>();
    if (!(x >= lo && x <= hi)) bad(key, fmt::format("'{}' is {}; it must lie in [{}, {}]", key, x, lo, hi));
    return x;
}

std::optional<int64_t> integer_field(const json &o, const char *key, int64_t lo, int64_t hi) {
    const json *v = field(o, key);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) bad(key, fmt::format("'{}' must be an integer, not {}", key, type_name(*v)));
    const int64_t x = v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX) ? INT64_MAX : v->get<int64_t>();
    if (x < lo || x > hi) bad(key, fmt::format("'{}' is {}; it must lie in [{}, {}]", key, x, lo, hi));
    return x;
}

// Content as text: a string, or a list of text parts joined.
std::optional<std::string> content_text(const json &m, const std::string &where) {
    const json *c = field(m, "content");
    if (!c) return std::nullopt;
    if (c->is_string()) return c->get<std::string>();
    if (!c->is_array()) bad(where + "content", fmt::format("'{}content' must be a string or a list of parts", where));
    std::string text;
    for (size_t i = 0; i < c->size(); ++i) {
        const json &part = (*c)[i];
        const std::string at = fmt::format("{}content[{}]", where, i);
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
            bad(at, fmt::format("'{}' must be a text part ({{\"type\": \"text\", \"text\": ...}}); other parts are not "
                                "supported",
                                at));
        text += part["text"].get<std::string>();
    }
    return text;
}

std::string tool_calls_json(const json &calls, const std::string &where, bool arguments_as_objects) {
    if (!calls.is_array()) bad(where, fmt::format("'{}' must be a list", where));
    json out = json::array();
    for (size_t i = 0; i < calls.size(); ++i) {
        const std::string at = fmt::format("{}[{}]", where, i);
        const json &c = calls[i];
        if (!c.is_object() || !c.contains("function") || !c["function"].is_object())
            bad(at, fmt::format("'{}' must be an object with a 'function'", at));
        const json &f = c["function"];
        if (!f.contains("name") || !f["name"].is_string()) bad(at + ".function.name", "a tool call needs a function name");
        json args = f.value("arguments", json("{}"));
        if (!args.is_string() && !args.is_object())
            bad(at + ".function.arguments", "tool-call arguments must be a JSON string or an object");
        if (args.is_string() && arguments_as_objects) {
            json parsed = json::parse(args.get<std::string>(), nullptr, false);
            if (parsed.is_discarded())
                bad(at + ".function.arguments", fmt::format("'{}.function.arguments' is not valid JSON", at));
            args = parsed;
        } else if (args.is_object() && !arguments_as_objects) {
            args = args.dump();
        }
        out.push_back({{"id", c.value("id", fmt::format("call_{}", i))},
                       {"type", "function"},
                       {"function", {{"name", f["name"]}, {"arguments", args}}}});
    }
    return out.dump();
}

std::vector<ChatMessage> parse_messages(const json &body, bool arguments_as_objects) {
    const json *messages = field(body, "messages");
    if (!messages) bad("messages", "'messages' is required");
    if (!messages->is_array()) bad("messages", fmt::format("'messages' must be a list, not {}", type_name(*messages)));
    if (messages->empty()) bad("messages", "'messages' must hold at least one message");
    std::vector<ChatMessage> out;
    for (size_t i = 0; i < messages->size(); ++i) {
        const json &m = (*messages)[i];
        const std::string where = fmt::format("messages[{}].", i);
        if (!m.is_object()) bad(fmt::format("messages[{}]", i), fmt::format("'messages[{}]' must be an object", i));
        ChatMessage msg;
        msg.role = string_field(m, "role", where);
        if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" && msg.role != "tool" &&
            msg.role != "developer")
            bad(where + "role", fmt::format("'{}role' is '{}'; expected system, developer, user, assistant or tool",
                                            where, msg.role));
        msg.content = content_text(m, where);
        if (const json *calls = field(m, "tool_calls"); calls && msg.role == "assistant")
            msg.tool_calls_json = tool_calls_json(*calls, where + "tool_calls", arguments_as_objects);
        if (!msg.content && msg.tool_calls_json.empty())
            bad(where + "content", fmt::format("'{}content' is required for a {} message", where, msg.role));
        msg.tool_call_id = string_field(m, "tool_call_id", where);
        msg.name = string_field(m, "name", where);
        out.push_back(std::move(msg));
    }
    return out;
}

// tools, narrowed to the one tool_choice names; tool_choice as a word or that name.
void parse_tools(const json &body, CompletionRequest &r) {
    const json *tools = field(body, "tools");
    json kept = json::array();
    if (tools) {
        if (!tools->is_array()) bad("tools", "'tools' must be a list");
        for (size_t i = 0; i < tools->size(); ++i) {
            const json &t = (*tools)[i];
            if (!t.is_object() || t.value("type", "") != "function" || !t.contains("function") ||
                !t["function"].is_object() || !t["function"].contains("name") || !t["function"]["name"].is_string())
                bad(fmt::format("tools[{}]", i),
                    fmt::format("'tools[{}]' must be {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}", i));
            kept.push_back(t);
        }
    }
    if (const json *choice = field(body, "tool_choice")) {
        if (choice->is_string()) {
            r.tool_choice = choice->get<std::string>();
            if (r.tool_choice != "none" && r.tool_choice != "auto" && r.tool_choice != "required")
                bad("tool_choice", fmt::format("'tool_choice' is '{}'; expected none, auto, required or a function",
                                               r.tool_choice));
        } else if (choice->is_object() && choice->contains("function") && (*choice)["function"].is_object() &&
                   (*choice)["function"].value("name", json()).is_string()) {
            const std::string name = (*choice)["function"]["name"].get<std::string>();
            json only = json::array();
            for (const json &t : kept)
                if (t["function"]["name"] == name) only.push_back(t);
            if (only.empty()) bad("tool_choice", fmt::format("'tool_choice' names '{}', which is not among the tools", name));
            kept = only;
            r.tool_choice = name;
        } else {
            bad("tool_choice", "'tool_choice' must be a string or {\"type\": \"function\", \"function\": {\"name\": ...}}");
        }
        if (r.tool_choice == "required" && kept.empty()) bad("tool_choice", "'tool_choice' is required but no tools are given");
    }
    if (!kept.empty() && r.tool_choice != "none") r.tools_json = kept.dump();
}

void parse_stop(const json &body, CompletionRequest &r) {
    const json *stop = field(body, "stop");
    if (!stop) return;
    if (stop->is_string()) {
        r.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
        for (const json &s : *stop) {
            if (!s.is_string()) bad("stop", "'stop' must be a string or a list of strings");
            r.stop.push_back(s.get<std::string>());
        }
    } else {
        bad("stop", fmt::format("'stop' must be a string or a list of strings, not {}", type_name(*stop)));
    }
    if (r.stop.size() > 16) bad("stop", "'stop' holds more than 16 strings");
    for (const std::string &s : r.stop)
        if (s.empty()) bad("stop", "'stop' strings must not be empty");
}

// The fields both endpoints share.
void parse_common(const json &body, CompletionRequest &r) {
    r.model = string_field(body, "model", "");
    if (auto n = integer_field(body, "max_completion_tokens", 1, INT32_MAX)) r.max_tokens = int32_t(*n);
    if (auto n = integer_field(body, "max_tokens", 1, INT32_MAX)) r.max_tokens = int32_t(*n);
    r.temperature = float(number_field(body, "temperature", 1.0, 0.0, 2.0));
    r.top_p = float(number_field(body, "top_p", 1.0, 0.0, 1.0));
    if (field(body, "top_p") && r.top_p <= 0.0f) bad("top_p", "'top_p' must be above 0");
    r.top_k = int32_t(integer_field(body, "top_k", 0, 1 << 20).value_or(0));
    if (auto s = integer_field(body, "seed", INT64_MIN, INT64_MAX)) r.seed = uint64_t(*s);
    integer_field(body, "n", 1, 1);  // one choice per request
    parse_stop(body, r);
    r.stream = bool_field(body, "stream", false);
    if (const json *opts = field(body, "stream_options")) {
        if (!opts->is_object()) bad("stream_options", "'stream_options' must be an object");
        r.include_usage = bool_field(*opts, "include_usage", false);
    }
}

}  // namespace

CompletionRequest parse_chat_request(const std::string &text, bool arguments_as_objects) {
    const json body = parse_body(text);
    CompletionRequest r;
    r.chat = true;
    parse_common(body, r);
    r.messages = parse_messages(body, arguments_as_objects);
    parse_tools(body, r);
    r.logprobs = bool_field(body, "logprobs", false);
    r.top_logprobs = int32_t(integer_field(body, "top_logprobs", 0, 20).value_or(0));
    if (r.top_logprobs > 0 && !r.logprobs) bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    return r;
}

CompletionRequest parse_completion_request(const std::string &text) {
    const json body = parse_body(text);
    CompletionRequest r;
    r.chat = false;
    parse_common(body, r);
    const json *prompt = field(body, "prompt");
    if (!prompt) bad("prompt", "'prompt' is required");
    if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) prompt = &(*prompt)[0];
    if (prompt->is_string()) {
        r.prompt = prompt->get<std::string>();
        if (r.prompt.empty()) bad("prompt", "'prompt' must not be empty");
    } else if (prompt->is_array() && !prompt->empty()) {
        for (const json &t : *prompt) {
            if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
                bad("prompt", "'prompt' must be a string, a list of one string, or a list of token ids");
            r.prompt_tokens.push_back(int32_t(t.get<int64_t>()));
        }
    } else {
        bad("prompt", "'prompt' must be a non-empty string, a list of one string, or a list of token ids");
    }
    if (bool_field(body, "echo", false)) bad("echo", "'echo' is not supported");
    if (auto n = integer_field(body, "logprobs", 0, 5)) {
        r.logprobs = true;
        r.top_logprobs = int32_t(*n);
    }
    return r;
}

}  // namespace mst::server
