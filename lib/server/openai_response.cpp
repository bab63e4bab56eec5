#include "server/openai_response.h"

#include <fmt/format.h>

namespace mst::server {

using json = nlohmann::json;

std::string to_text(const json &value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_event(const json &value) { return "data: " + to_text(value) + "\n\n"; }

std::string sse_done() { return "data: [DONE]\n\n"; }

json error_json(const RequestError &error) {
    return {{"error",
             {{"message", error.what()},
              {"type", error.type},
              {"param", error.param.empty() ? json() : json(error.param)},
              {"code", error.code.empty() ? json() : json(error.code)}}}};
}

const char *finish_reason(mst_stop_reason reason, bool has_tool_calls) {
    if (has_tool_calls) return "tool_calls";
    return reason == MST_STOP_MAX_TOKENS || reason == MST_STOP_CONTEXT_FULL ? "length" : "stop";
}

json usage_json(size_t prompt_tokens, size_t completion_tokens) {
    return {{"prompt_tokens", prompt_tokens},
            {"completion_tokens", completion_tokens},
            {"total_tokens", prompt_tokens + completion_tokens}};
}

json tool_calls_json(const std::vector<ToolCall> &calls, const std::string &request_id, size_t first_index) {
    json out = json::array();
    for (size_t i = 0; i < calls.size(); ++i) {
        const ToolCall &c = calls[i];
        const size_t index = first_index + i;
        out.push_back({{"index", index},
                       {"id", c.id.empty() ? fmt::format("call_{}_{}", request_id, index) : c.id},
                       {"type", "function"},
                       {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    }
    return out;
}

}  // namespace mst::server
