#include "chat/tool_calls.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <optional>

namespace mst {
namespace {

using json = nlohmann::json;

struct SectionMarkers {
    std::string_view begin, end;
};

SectionMarkers section_markers(ToolCallFormat format) {
    switch (format) {
    case ToolCallFormat::Qwen: return {"<tool_call>", "</tool_call>"};
    case ToolCallFormat::DeepSeek: return {"<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"};
    case ToolCallFormat::Kimi: return {"<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"};
    default: return {};
    }
}

constexpr std::string_view kHarmonyMessage = "<|message|>";
constexpr std::array<std::string_view, 3> kHarmonyEnds = {"<|end|>", "<|call|>", "<|return|>"};

// How many trailing bytes of `text` could begin `marker`: held back until the next piece
// tells whether the marker follows.
size_t partial_marker_tail(std::string_view text, std::string_view marker) {
    for (size_t n = std::min(text.size(), marker.size() - 1); n > 0; --n)
        if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
    return 0;
}

std::string_view trim(std::string_view s) {
    const auto space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
    while (!s.empty() && space(s.front())) s.remove_prefix(1);
    while (!s.empty() && space(s.back())) s.remove_suffix(1);
    return s;
}

std::optional<json> parse_json(std::string_view text) {
    json v = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (v.is_discarded()) return std::nullopt;
    return v;
}

// Arguments as the OpenAI API carries them: a JSON object, as compact text. A string
// holding a JSON object (some models quote their arguments) is taken for the object.
std::optional<std::string> arguments_text(const json &v) {
    if (v.is_object()) return v.dump();
    if (v.is_string())
        if (const auto inner = parse_json(v.get<std::string>()); inner && inner->is_object()) return inner->dump();
    return std::nullopt;
}

bool parse_qwen_json(std::string_view body, std::vector<ToolCall> &calls) {
    const auto v = parse_json(body);
    if (!v || !v->is_object() || !v->contains("name") || !(*v)["name"].is_string()) return false;
    const json &args = v->contains("arguments") ? (*v)["arguments"] : v->value("parameters", json::object());
    const auto text = arguments_text(args);
    if (!text) return false;
    calls.push_back({"", (*v)["name"].get<std::string>(), *text});
    return true;
}

// Qwen3.5's form: <function=N> then <parameter=P>\nV\n</parameter> blocks, </function>.
// A value that reads as JSON (a number, a list) is taken as JSON, else as a string.
bool parse_qwen_xml(std::string_view body, std::vector<ToolCall> &calls) {
    constexpr std::string_view kFunction = "<function=", kFunctionEnd = "</function>";
    constexpr std::string_view kParam = "<parameter=", kParamEnd = "</parameter>";
    if (!body.starts_with(kFunction) || !body.ends_with(kFunctionEnd)) return false;
    body.remove_suffix(kFunctionEnd.size());
    const size_t name_end = body.find('>');
    if (name_end == std::string_view::npos) return false;
    const std::string name(trim(body.substr(kFunction.size(), name_end - kFunction.size())));
    if (name.empty()) return false;
    json args = json::object();
    std::string_view rest = trim(body.substr(name_end + 1));
    while (!rest.empty()) {
        if (!rest.starts_with(kParam)) return false;
        const size_t key_end = rest.find('>');
        const size_t value_end = rest.find(kParamEnd);
        if (key_end == std::string_view::npos || value_end == std::string_view::npos || value_end < key_end) return false;
        const std::string key(trim(rest.substr(kParam.size(), key_end - kParam.size())));
        std::string_view value = rest.substr(key_end + 1, value_end - key_end - 1);
        if (value.starts_with('\n')) value.remove_prefix(1);
        if (value.ends_with('\n')) value.remove_suffix(1);
        const auto as_json = parse_json(value);
        args[key] = as_json && !as_json->is_string() ? *as_json : json(std::string(value));
        rest = trim(rest.substr(value_end + kParamEnd.size()));
    }
    calls.push_back({"", name, args.dump()});
    return true;
}

// Calls of the form BEGIN head SEP arguments END, repeated with whitespace between
// (DeepSeek's and Kimi's sections).
template <typename OnCall>
bool parse_call_list(std::string_view body, std::string_view begin, std::string_view sep, std::string_view end,
                     OnCall on_call) {
    body = trim(body);
    if (body.empty()) return false;
    while (!body.empty()) {
        if (!body.starts_with(begin)) return false;
        const size_t sep_at = body.find(sep);
        const size_t end_at = body.find(end);
        if (sep_at == std::string_view::npos || end_at == std::string_view::npos || end_at < sep_at) return false;
        const std::string_view head = body.substr(begin.size(), sep_at - begin.size());
        const std::string_view args = body.substr(sep_at + sep.size(), end_at - sep_at - sep.size());
        if (!on_call(trim(head), trim(args))) return false;
        body = trim(body.substr(end_at + end.size()));
    }
    return true;
}

bool parse_deepseek(std::string_view body, std::vector<ToolCall> &calls) {
    return parse_call_list(body, "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", "<｜tool▁call▁end｜>",
                           [&](std::string_view type, std::string_view rest) {
        if (type != "function") return false;
        // NAME\n```json\n{...}\n```
        const size_t newline = rest.find('\n');
        if (newline == std::string_view::npos) return false;
        const std::string name(trim(rest.substr(0, newline)));
        std::string_view args = trim(rest.substr(newline + 1));
        if (args.starts_with("```json")) args.remove_prefix(7);
        else if (args.starts_with("```")) args.remove_prefix(3);
        if (args.ends_with("```")) args.remove_suffix(3);
        const auto v = parse_json(trim(args));
        const auto text = v ? arguments_text(*v) : std::nullopt;
        if (name.empty() || !text) return false;
        calls.push_back({"", name, *text});
        return true;
    });
}

bool parse_kimi(std::string_view body, std::vector<ToolCall> &calls) {
    return parse_call_list(body, "<|tool_call_begin|>", "<|tool_call_argument_begin|>", "<|tool_call_end|>",
                           [&](std::string_view id, std::string_view args) {
        // functions.NAME:INDEX
        std::string_view name = id;
        if (name.starts_with("functions.")) name.remove_prefix(10);
        if (const size_t colon = name.rfind(':'); colon != std::string_view::npos) name = name.substr(0, colon);
        const auto v = parse_json(args);
        const auto text = v ? arguments_text(*v) : std::nullopt;
        if (name.empty() || !text) return false;
        calls.push_back({std::string(id), std::string(name), *text});
        return true;
    });
}

// The word after `key` in a Harmony header, up to a space or the next marker.
std::string header_word(std::string_view header, std::string_view key) {
    const size_t at = header.find(key);
    if (at == std::string_view::npos) return "";
    std::string_view rest = header.substr(at + key.size());
    const size_t stop = rest.find_first_of(" <\n");
    return std::string(rest.substr(0, stop));
}

}  // namespace

const char *tool_call_format_name(ToolCallFormat format) {
    switch (format) {
    case ToolCallFormat::Qwen: return "qwen";
    case ToolCallFormat::DeepSeek: return "deepseek";
    case ToolCallFormat::Kimi: return "kimi";
    case ToolCallFormat::Harmony: return "harmony";
    default: return "none";
    }
}

ToolCallFormat detect_tool_call_format(std::string_view chat_template, std::string_view architecture) {
    if (chat_template.find("<tool_call>") != std::string_view::npos) return ToolCallFormat::Qwen;
    if (chat_template.find("tool▁calls▁begin") != std::string_view::npos) return ToolCallFormat::DeepSeek;
    // Kimi K2's template declares tools (tool_declare) but renders no past calls.
    if (chat_template.find("<|tool_calls_section_begin|>") != std::string_view::npos ||
        chat_template.find("tool_declare") != std::string_view::npos)
        return ToolCallFormat::Kimi;
    if (chat_template.find("<|channel|>") != std::string_view::npos) return ToolCallFormat::Harmony;
    if (architecture.starts_with("qwen3")) return ToolCallFormat::Qwen;
    if (architecture.starts_with("kimi")) return ToolCallFormat::Kimi;
    if (architecture.starts_with("deepseek_v3")) return ToolCallFormat::DeepSeek;
    if (architecture == "gpt_oss") return ToolCallFormat::Harmony;
    return ToolCallFormat::None;
}

bool parse_tool_call_section(ToolCallFormat format, std::string_view body, std::vector<ToolCall> &calls) {
    std::vector<ToolCall> found;
    bool ok = false;
    switch (format) {
    case ToolCallFormat::Qwen: {
        const std::string_view inner = trim(body);
        ok = inner.starts_with("<function=") ? parse_qwen_xml(inner, found) : parse_qwen_json(inner, found);
        break;
    }
    case ToolCallFormat::DeepSeek: ok = parse_deepseek(body, found); break;
    case ToolCallFormat::Kimi: ok = parse_kimi(body, found); break;
    default: break;
    }
    if (ok) calls.insert(calls.end(), found.begin(), found.end());
    return ok;
}

ToolCallDelta ToolCallParser::push(std::string_view text) {
    pending_.append(text);
    ToolCallDelta out;
    scan(out, false);
    return out;
}

ToolCallDelta ToolCallParser::finish() {
    ToolCallDelta out;
    scan(out, true);
    return out;
}

void ToolCallParser::scan(ToolCallDelta &out, bool at_end) {
    switch (format_) {
    case ToolCallFormat::None:
        out.content += pending_;
        pending_.clear();
        break;
    case ToolCallFormat::Harmony: scan_harmony(out, at_end); break;
    default: scan_sections(out, at_end); break;
    }
}

void ToolCallParser::scan_sections(ToolCallDelta &out, bool at_end) {
    const SectionMarkers m = section_markers(format_);
    for (;;) {
        if (!in_section_) {
            const size_t at = pending_.find(m.begin);
            if (at == std::string::npos) {
                const size_t hold = at_end ? 0 : partial_marker_tail(pending_, m.begin);
                out.content.append(pending_, 0, pending_.size() - hold);
                pending_.erase(0, pending_.size() - hold);
                return;
            }
            out.content.append(pending_, 0, at);
            pending_.erase(0, at + m.begin.size());
            in_section_ = true;
        }
        const size_t end = pending_.find(m.end);
        if (end == std::string::npos) {
            if (at_end) {  // never closed: the model's text as it wrote it
                out.content.append(m.begin).append(pending_);
                pending_.clear();
                in_section_ = false;
            }
            return;
        }
        const std::string_view body(pending_.data(), end);
        if (!parse_tool_call_section(format_, body, out.calls))
            out.content.append(m.begin).append(body).append(m.end);
        pending_.erase(0, end + m.end.size());
        in_section_ = false;
    }
}

void ToolCallParser::scan_harmony(ToolCallDelta &out, bool at_end) {
    for (;;) {
        if (!in_body_) {
            const size_t at = pending_.find(kHarmonyMessage);
            if (at == std::string::npos) {
                if (at_end) {  // a header that never opened a message: plain text
                    out.content += pending_;
                    pending_.clear();
                }
                return;
            }
            const std::string_view header(pending_.data(), at);
            channel_ = header_word(header, "<|channel|>");
            recipient_ = header_word(header, "to=");
            pending_.erase(0, at + kHarmonyMessage.size());
            in_body_ = true;
        }
        size_t end = std::string::npos, end_len = 0;
        for (const std::string_view marker : kHarmonyEnds)
            if (const size_t at = pending_.find(marker); at < end) {
                end = at;
                end_len = marker.size();
            }
        const bool is_call = recipient_.starts_with("functions.");
        std::string &stream = channel_ == "analysis" ? out.reasoning : out.content;
        if (end == std::string::npos && !at_end) {
            if (!is_call) {  // stream the text, holding back what could begin an end marker
                size_t hold = 0;
                for (const std::string_view marker : kHarmonyEnds) hold = std::max(hold, partial_marker_tail(pending_, marker));
                stream.append(pending_, 0, pending_.size() - hold);
                pending_.erase(0, pending_.size() - hold);
            }
            return;
        }
        // The message is complete (an end marker, or the end of generation: <|call|> and
        // <|return|> are end-of-sequence tokens and never reach the text).
        const size_t body_len = end == std::string::npos ? pending_.size() : end;
        const std::string_view body(pending_.data(), body_len);
        bool called = false;
        if (is_call) {
            const auto v = parse_json(trim(body));
            if (const auto text = v ? arguments_text(*v) : std::nullopt) {
                out.calls.push_back({"", recipient_.substr(10), *text});
                called = true;
            }
        }
        if (!called) stream.append(body);
        pending_.erase(0, end == std::string::npos ? pending_.size() : end + end_len);
        in_body_ = false;
    }
}

}  // namespace mst
