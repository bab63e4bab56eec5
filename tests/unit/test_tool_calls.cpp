// Tool-call parsing per family on scripted model outputs: whole and split into pieces of
// every size (the parser must give the same result however the text streams in), and
// malformed outputs (never closed, bad JSON), which come back as plain content.
#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "chat/tool_calls.h"
#include "test_paths.h"

namespace {

using mst::ToolCall;
using mst::ToolCallFormat;
using mst::ToolCallParser;

struct Parsed {
    std::string content, reasoning;
    std::vector<ToolCall> calls;
};

// Feed `text` in pieces of `piece` bytes (0: all at once).
Parsed run(ToolCallFormat format, const std::string &text, size_t piece = 0) {
    ToolCallParser parser(format);
    Parsed out;
    const auto take = [&](const mst::ToolCallDelta &d) {
        out.content += d.content;
        out.reasoning += d.reasoning;
        out.calls.insert(out.calls.end(), d.calls.begin(), d.calls.end());
    };
    const size_t step = piece ? piece : text.size();
    for (size_t i = 0; i < text.size(); i += step) take(parser.push(std::string_view(text).substr(i, step)));
    take(parser.finish());
    return out;
}

// The same result whether the text comes whole or 1, 2, 3, 5 or 7 bytes at a time.
Parsed run_all_splits(ToolCallFormat format, const std::string &text) {
    const Parsed whole = run(format, text);
    for (const size_t piece : {1, 2, 3, 5, 7}) {
        const Parsed split = run(format, text, piece);
        EXPECT_EQ(split.content, whole.content) << "piece " << piece;
        EXPECT_EQ(split.reasoning, whole.reasoning) << "piece " << piece;
        EXPECT_EQ(split.calls.size(), whole.calls.size()) << "piece " << piece;
        for (size_t i = 0; i < std::min(split.calls.size(), whole.calls.size()); ++i) {
            EXPECT_EQ(split.calls[i].name, whole.calls[i].name);
            EXPECT_EQ(split.calls[i].arguments, whole.calls[i].arguments);
        }
    }
    return whole;
}

// One call a test expects: its name, and its arguments where the test checks them.
struct ExpectedCall {
    std::string name;
    std::optional<std::string> arguments;
};

void expect_calls(const std::vector<ToolCall> &calls, const std::vector<ExpectedCall> &want) {
    ASSERT_EQ(calls.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(calls[i].name, want[i].name) << "call " << i;
        if (want[i].arguments) {
            EXPECT_EQ(calls[i].arguments, *want[i].arguments) << "call " << i;
        }
    }
}

TEST(ToolCalls, QwenJson) {
    const Parsed p = run_all_splits(ToolCallFormat::Qwen,
                                    "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                                    "{\"city\": \"Paris\", \"days\": 2}}\n</tool_call>\n<tool_call>\n{\"name\": "
                                    "\"search\", \"arguments\": {\"query\": \"a<b\"}}\n</tool_call>");
    EXPECT_EQ(p.content, "Let me check.\n\n");
    expect_calls(p.calls, {{"get_weather", R"({"city":"Paris","days":2})"}, {"search", R"({"query":"a<b"})"}});
}

TEST(ToolCalls, QwenXmlParameters) {
    const Parsed p = run_all_splits(ToolCallFormat::Qwen,
                                    "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
                                    "<parameter=days>\n2\n</parameter>\n<parameter=tags>\n[\"été\", \"x\"]\n"
                                    "</parameter>\n</function>\n</tool_call>");
    EXPECT_EQ(p.content, "");
    expect_calls(p.calls, {{"get_weather", R"({"city":"Paris","days":2,"tags":["été","x"]})"}});
}

TEST(ToolCalls, DeepSeek) {
    const Parsed p = run_all_splits(
        ToolCallFormat::DeepSeek,
        "Sure<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": "
        "\"Paris\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>search\n```json\n{\"query\": "
        "\"x\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>");
    EXPECT_EQ(p.content, "Sure");
    expect_calls(p.calls, {{"get_weather", R"({"city":"Paris"})"}, {"search", std::nullopt}});
}

TEST(ToolCalls, Kimi) {
    const Parsed p = run_all_splits(
        ToolCallFormat::Kimi,
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>"
        "{\"city\": \"Paris\"}<|tool_call_end|><|tool_call_begin|>functions.search:1<|tool_call_argument_begin|>"
        "{\"query\": \"x\"}<|tool_call_end|><|tool_calls_section_end|>");
    EXPECT_EQ(p.content, "");
    expect_calls(p.calls, {{"get_weather", R"({"city":"Paris"})"}, {"search", std::nullopt}});
    if (!p.calls.empty()) {
        EXPECT_EQ(p.calls[0].id, "functions.get_weather:0");
    }
}

TEST(ToolCalls, HarmonyCallAfterAnalysis) {
    // <|call|> is an end-of-sequence token: the text ends with the arguments.
    const Parsed p = run_all_splits(ToolCallFormat::Harmony,
                                    "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>"
                                    "commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Paris\"}");
    EXPECT_EQ(p.reasoning, "Need weather.");
    EXPECT_EQ(p.content, "");
    expect_calls(p.calls, {{"get_weather", R"({"city":"Paris"})"}});
}

TEST(ToolCalls, HarmonyRecipientBeforeChannelAndFinalAnswer) {
    const Parsed call = run_all_splits(ToolCallFormat::Harmony,
                                       " to=functions.search<|channel|>commentary json<|message|>{\"query\": \"x\"}<|call|>");
    expect_calls(call.calls, {{"search", std::nullopt}});
    const Parsed answer = run_all_splits(ToolCallFormat::Harmony,
                                         "<|channel|>analysis<|message|>think<|end|><|start|>assistant<|channel|>final"
                                         "<|message|>It is 21°C.");
    EXPECT_EQ(answer.content, "It is 21°C.");
    EXPECT_EQ(answer.reasoning, "think");
    EXPECT_TRUE(answer.calls.empty());
}

TEST(ToolCalls, FinalContentStreamsBeforeTheEnd) {
    ToolCallParser parser(ToolCallFormat::Harmony);
    EXPECT_EQ(parser.push("<|channel|>final<|message|>Hello wor").content, "Hello wor");
    EXPECT_EQ(parser.push("ld<|e").content, "ld");  // "<|e" may begin <|end|>
    EXPECT_EQ(parser.push("nd|>").content, "");
    EXPECT_EQ(parser.finish().content, "");
}

TEST(ToolCalls, ContentBeforeACallIsNotHeldBack) {
    ToolCallParser parser(ToolCallFormat::Qwen);
    EXPECT_EQ(parser.push("Hello <tool").content, "Hello ");
    EXPECT_EQ(parser.push("ing>").content, "<tooling>");
}

TEST(ToolCalls, MalformedComeBackAsContent) {
    const std::string unterminated = "ok <tool_call>\n{\"name\": \"f\", \"arguments\": {}}";
    const Parsed a = run_all_splits(ToolCallFormat::Qwen, unterminated);
    EXPECT_TRUE(a.calls.empty());
    EXPECT_EQ(a.content, unterminated);

    const std::string bad_json = "<tool_call>\n{\"name\": \"f\", \"arguments\": {oops}\n</tool_call> after";
    const Parsed b = run_all_splits(ToolCallFormat::Qwen, bad_json);
    EXPECT_TRUE(b.calls.empty());
    EXPECT_EQ(b.content, bad_json);

    const std::string no_name = "<tool_call>{\"arguments\": {}}</tool_call>";
    EXPECT_EQ(run_all_splits(ToolCallFormat::Qwen, no_name).content, no_name);

    const std::string bad_xml = "<tool_call>\n<function=f>\n<parameter=x>\n1\n</function>\n</tool_call>";
    EXPECT_EQ(run_all_splits(ToolCallFormat::Qwen, bad_xml).content, bad_xml);

    const std::string ds = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{\"a\":}\n```"
                           "<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
    EXPECT_EQ(run_all_splits(ToolCallFormat::DeepSeek, ds).content, ds);
    const std::string ds_open = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{";
    EXPECT_EQ(run_all_splits(ToolCallFormat::DeepSeek, ds_open).content, ds_open);

    const std::string kimi = "<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>"
                             "[1, 2]<|tool_call_end|><|tool_calls_section_end|>";
    EXPECT_EQ(run_all_splits(ToolCallFormat::Kimi, kimi).content, kimi);

    const Parsed h = run_all_splits(ToolCallFormat::Harmony,
                                    "<|channel|>commentary to=functions.f <|constrain|>json<|message|>{not json");
    EXPECT_TRUE(h.calls.empty());
    EXPECT_EQ(h.content, "{not json");

    // A model that never writes Harmony's markers (a random tiny model): all content.
    EXPECT_EQ(run_all_splits(ToolCallFormat::Harmony, "random words <|chan").content, "random words <|chan");
}

TEST(ToolCalls, NoFormatPassesEverythingThrough) {
    const std::string text = "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>";
    const Parsed p = run_all_splits(ToolCallFormat::None, text);
    EXPECT_EQ(p.content, text);
    EXPECT_TRUE(p.calls.empty());
}

std::string template_text(const std::string &name) {
    std::ifstream in(mst::test::data_path("chat_templates/templates/" + name + ".jinja"));
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

TEST(ToolCalls, FamilyFromTheRealTemplates) {
    EXPECT_EQ(mst::detect_tool_call_format(template_text("qwen3"), ""), ToolCallFormat::Qwen);
    EXPECT_EQ(mst::detect_tool_call_format(template_text("qwen3_5"), ""), ToolCallFormat::Qwen);
    EXPECT_EQ(mst::detect_tool_call_format(template_text("deepseek_v3"), ""), ToolCallFormat::DeepSeek);
    EXPECT_EQ(mst::detect_tool_call_format(template_text("kimi_k2"), ""), ToolCallFormat::Kimi);
    EXPECT_EQ(mst::detect_tool_call_format(template_text("gpt_oss"), ""), ToolCallFormat::Harmony);
    EXPECT_EQ(mst::detect_tool_call_format(template_text("mixtral_8x7b"), "mixtral"), ToolCallFormat::None);
    EXPECT_EQ(mst::detect_tool_call_format("", "qwen3_moe"), ToolCallFormat::Qwen);
    EXPECT_EQ(mst::detect_tool_call_format("", "gpt_oss"), ToolCallFormat::Harmony);
}

}  // namespace
