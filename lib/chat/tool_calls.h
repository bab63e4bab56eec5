// Tool calls in a model's output, per model family, parsed as the text streams in: what
// is plain content goes out as soon as it cannot be the start of a call, and each call
// goes out whole once its closing marker arrives. A call that never closes or whose
// arguments are not JSON comes back as plain content, so nothing the model wrote is lost.
//
// Families and their markers (as their chat templates render past calls):
//   Qwen      Qwen3: <tool_call>\n{"name": N, "arguments": {...}}\n</tool_call>
//             Qwen3.5: <tool_call>\n<function=N>\n<parameter=P>\nV\n</parameter>\n</function>\n</tool_call>
//   DeepSeek  <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>N\n```json\n{...}\n```
//             <｜tool▁call▁end｜>...<｜tool▁calls▁end｜>
//   Kimi      <|tool_calls_section_begin|><|tool_call_begin|>functions.N:I<|tool_call_argument_begin|>{...}
//             <|tool_call_end|>...<|tool_calls_section_end|>
//   Harmony   gpt-oss: messages "[<|start|>assistant]<|channel|>C[ to=R][ <|constrain|>json]<|message|>BODY"
//             ended by <|end|>, <|call|> or <|return|> (the last two are end-of-sequence
//             tokens, so the text may simply end): recipient functions.N is a call, channel
//             final the content, channel analysis the reasoning.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mst {

enum class ToolCallFormat { None, Qwen, DeepSeek, Kimi, Harmony };

// "none", "qwen", "deepseek", "kimi", "harmony".
const char *tool_call_format_name(ToolCallFormat format);

// The family a model's output follows: from the markers its chat template writes, else
// from its architecture (config model_type); None when neither tells.
ToolCallFormat detect_tool_call_format(std::string_view chat_template, std::string_view architecture);

struct ToolCall {
    std::string id;         // the model's own id where it writes one (Kimi), else ""
    std::string name;
    std::string arguments;  // a JSON object, compact
};

// What one push or finish gives: text to show, reasoning (Harmony's analysis channel),
// and the calls completed.
struct ToolCallDelta {
    std::string content;
    std::string reasoning;
    std::vector<ToolCall> calls;
};

class ToolCallParser {
public:
    explicit ToolCallParser(ToolCallFormat format) : format_(format) {}

    // Feed the next piece of generated text.
    ToolCallDelta push(std::string_view text);
    // The generation ended: whatever was held back, as content unless it completes a call.
    ToolCallDelta finish();

private:
    void scan(ToolCallDelta &out, bool at_end);
    void scan_sections(ToolCallDelta &out, bool at_end);
    void scan_harmony(ToolCallDelta &out, bool at_end);

    ToolCallFormat format_;
    std::string pending_;     // text not yet given out
    bool in_section_ = false; // marker families: inside a call section
    // Harmony: inside a message's body (after <|message|>), of this channel and recipient.
    bool in_body_ = false;
    std::string channel_, recipient_;
};

// Parse one whole section (the text between the section markers, exclusive) of a marker
// family into calls; false when it is malformed. Exposed for tests.
bool parse_tool_call_section(ToolCallFormat format, std::string_view body, std::vector<ToolCall> &calls);

}  // namespace mst
