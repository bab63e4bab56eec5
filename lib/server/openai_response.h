// The server's answers in OpenAI's shapes: server-sent-event framing, errors, usage and
// finish reasons, tool calls.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "chat/tool_calls.h"
#include "moestream.h"
#include "server/openai_request.h"

namespace mst::server {

// JSON as the server sends it: compact, with bytes that are not UTF-8 (a model may write
// them) replaced by U+FFFD instead of failing.
std::string to_text(const nlohmann::json &value);

// One server-sent event carrying `value`: "data: {...}\n\n". The JSON has no raw newline,
// so the event cannot be split.
std::string sse_event(const nlohmann::json &value);
// The event that ends a stream: "data: [DONE]\n\n".
std::string sse_done();

// {"error": {"message", "type", "param", "code"}}.
nlohmann::json error_json(const RequestError &error);

// "stop" (end of sequence, a stop string, a cancelled request), "length" (max_tokens, a
// full context), or "tool_calls" when the answer holds calls.
const char *finish_reason(mst_stop_reason reason, bool has_tool_calls);

nlohmann::json usage_json(size_t prompt_tokens, size_t completion_tokens);

// Calls as OpenAI lists them: [{"index", "id", "type": "function", "function": {...}}];
// a call without an id of its own gets "call_<request id>_<index>".
nlohmann::json tool_calls_json(const std::vector<ToolCall> &calls, const std::string &request_id, size_t first_index);

}  // namespace mst::server
