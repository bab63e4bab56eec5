// The requests of the OpenAI-compatible server (`moestream serve`), parsed and checked:
// /v1/chat/completions and /v1/completions bodies into one struct, every wrong field a
// RequestError that names it (the server answers it as a 4xx in OpenAI's error shape).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mst::server {

// A request the server refuses: the HTTP status, OpenAI's error type and code, the field.
struct RequestError : std::runtime_error {
    RequestError(int http_status, std::string message, std::string field = "", std::string error_code = "",
                 std::string error_type = "invalid_request_error")
        : std::runtime_error(std::move(message)), status(http_status), param(std::move(field)),
          code(std::move(error_code)), type(std::move(error_type)) {}
    int status;
    std::string param, code, type;
};

// One message as the chat template wants it (mst_chat_message): JSON-valued fields as text.
struct ChatMessage {
    std::string role;
    std::optional<std::string> content;  // none: an assistant turn with only tool calls
    std::string tool_calls_json;         // "" or a JSON array
    std::string tool_call_id, name;      // "" when absent
};

struct CompletionRequest {
    bool chat = true;                       // /v1/chat/completions, else /v1/completions
    std::string model;                      // "" when not given
    std::vector<ChatMessage> messages;      // chat
    std::string prompt;                     // completions: text ...
    std::vector<int32_t> prompt_tokens;     // ... or token ids
    std::string tools_json;                 // "" or the tools array (narrowed by tool_choice)
    std::string tool_choice = "auto";       // "none" | "auto" | "required" | a function's name
    std::optional<int32_t> max_tokens;
    float temperature = 1.0f, top_p = 1.0f;
    int32_t top_k = 0;
    std::optional<uint64_t> seed;
    std::vector<std::string> stop;
    bool logprobs = false;
    int32_t top_logprobs = 0;
    bool stream = false, include_usage = false;
};

// Parse a request body. Throws RequestError (400) for malformed JSON, a field of the wrong
// type or out of range, empty messages, an unknown role, a tool_choice naming no tool.
// `arguments_as_objects`: tool-call arguments given as JSON text become objects (what
// most templates expect); false keeps them as text (DeepSeek's template concatenates them).
CompletionRequest parse_chat_request(const std::string &body, bool arguments_as_objects);
CompletionRequest parse_completion_request(const std::string &body);

}  // namespace mst::server
