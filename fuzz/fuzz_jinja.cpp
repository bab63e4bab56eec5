// Chat templates: any bytes, parsed as a Jinja template and rendered on a small
// conversation with tools, under tight limits. A bad template must end in mst::Error;
// a crash, a hang past the limits, or unbounded recursion is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chat/jinja.h"
#include "core/error.h"

namespace {

const nlohmann::ordered_json &context() {
    static const nlohmann::ordered_json c = nlohmann::ordered_json::parse(R"({
      "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Zürich? 🚀"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call00001", "type": "function",
          "function": {"name": "get_weather", "arguments": {"city": "Zürich", "days": 2}}}]},
        {"role": "tool", "tool_call_id": "call00001", "content": "{\"temp\": 3.5}"},
        {"role": "assistant", "content": "<think>\ncold\n</think>\n\n3.5 degrees", "reasoning_content": "cold"}],
      "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "default": 1}},
        "required": ["city"]}}}],
      "add_generation_prompt": true, "enable_thinking": false, "bos_token": "<s>", "eos_token": "</s>"})");
    return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string_view source(reinterpret_cast<const char *>(data), size);
    mst::jinja::RenderOptions options;
    options.max_output_bytes = 1 << 20;
    options.max_steps = 200000;
    options.max_items = 10000;
    options.max_depth = 64;
    options.now = 1749988800;
    try {
        const mst::jinja::Template t = mst::jinja::Template::parse(source);
        (void)t.render(mst::jinja::from_json(context()), options);
    } catch (const mst::Error &) {
    }
    return 0;
}
