// The server's request parsing and answer framing: OpenAI request bodies into
// CompletionRequest, every bad field a 400 naming it, and server-sent events that a
// client can split.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>

#include "server/openai_request.h"
#include "server/openai_response.h"

namespace {

using mst::server::CompletionRequest;
using mst::server::parse_chat_request;
using mst::server::parse_completion_request;
using mst::server::RequestError;
using nlohmann::json;

CompletionRequest chat(const json &body, bool objects = true) { return parse_chat_request(body.dump(), objects); }

// The RequestError a body gives (status 0 when it is accepted).
RequestError chat_error(const std::string &body) {
    try {
        parse_chat_request(body, true);
    } catch (const RequestError &e) {
        return e;
    }
    return RequestError(0, "accepted");
}

RequestError completion_error(const std::string &body) {
    try {
        parse_completion_request(body);
    } catch (const RequestError &e) {
        return e;
    }
    return RequestError(0, "accepted");
}

const json kUser = json::array({{{"role", "user"}, {"content", "Hi"}}});

TEST(ServerRequest, ChatFields) {
    const CompletionRequest r = chat({{"model", "m"},
                                      {"messages", kUser},
                                      {"max_tokens", 7},
                                      {"temperature", 0.5},
                                      {"top_p", 0.9},
                                      {"top_k", 20},
                                      {"seed", 42},
                                      {"stop", "END"},
                                      {"logprobs", true},
                                      {"top_logprobs", 3},
                                      {"stream", true},
                                      {"stream_options", {{"include_usage", true}}}});
    EXPECT_EQ(r.model, "m");
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].role, "user");
    EXPECT_EQ(r.messages[0].content, "Hi");
    EXPECT_EQ(r.max_tokens, 7);
    EXPECT_FLOAT_EQ(r.temperature, 0.5f);
    EXPECT_FLOAT_EQ(r.top_p, 0.9f);
    EXPECT_EQ(r.top_k, 20);
    EXPECT_EQ(r.seed, 42u);
    EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
    EXPECT_TRUE(r.logprobs);
    EXPECT_EQ(r.top_logprobs, 3);
    EXPECT_TRUE(r.stream);
    EXPECT_TRUE(r.include_usage);
    EXPECT_EQ(chat({{"messages", kUser}, {"stop", {"a", "b"}}}).stop, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(chat({{"messages", kUser}, {"max_completion_tokens", 9}}).max_tokens, 9);
    EXPECT_FALSE(chat({{"messages", kUser}, {"max_tokens", nullptr}}).max_tokens.has_value()) << "null is not given";
}

TEST(ServerRequest, ToolRoundTripMessages) {
    const json messages = json::array(
        {{{"role", "user"}, {"content", "Weather?"}},
         {{"role", "assistant"},
          {"content", nullptr},
          {"tool_calls",
           {{{"id", "call_1"},
             {"type", "function"},
             {"function", {{"name", "get_weather"}, {"arguments", "{\"city\": \"Paris\"}"}}}}}}},
         {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "{\"temp\": 21}"}}});
    const json tools = json::array({{{"type", "function"}, {"function", {{"name", "get_weather"}}}},
                                    {{"type", "function"}, {"function", {{"name", "search"}}}}});
    const CompletionRequest r = chat({{"messages", messages}, {"tools", tools}});
    ASSERT_EQ(r.messages.size(), 3u);
    EXPECT_FALSE(r.messages[1].content.has_value());
    const json calls = json::parse(r.messages[1].tool_calls_json);
    EXPECT_EQ(calls[0]["function"]["arguments"], json({{"city", "Paris"}})) << "arguments become an object";
    EXPECT_EQ(r.messages[2].tool_call_id, "call_1");
    EXPECT_EQ(json::parse(r.tools_json).size(), 2u);

    const CompletionRequest text_args = chat({{"messages", messages}}, /*objects=*/false);
    EXPECT_EQ(json::parse(text_args.messages[1].tool_calls_json)[0]["function"]["arguments"], "{\"city\": \"Paris\"}");

    const CompletionRequest named =
        chat({{"messages", kUser}, {"tools", tools}, {"tool_choice", {{"type", "function"}, {"function", {{"name", "search"}}}}}});
    EXPECT_EQ(named.tool_choice, "search");
    EXPECT_EQ(json::parse(named.tools_json).size(), 1u) << "a named tool_choice keeps only that tool";
    EXPECT_TRUE(chat({{"messages", kUser}, {"tools", tools}, {"tool_choice", "none"}}).tools_json.empty());
}

TEST(ServerRequest, TextPartsAreJoined) {
    const json parts = json::array({{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}});
    EXPECT_EQ(chat({{"messages", {{{"role", "user"}, {"content", parts}}}}}).messages[0].content, "ab");
}

TEST(ServerRequest, BadChatRequestsNameTheField) {
    struct Case {
        std::string body, param, words;
    };
    const std::vector<Case> cases = {
        {"{not json", "", "not valid JSON"},
        {"[1, 2]", "", "JSON object"},
        {R"({})", "messages", "required"},
        {R"({"messages": []})", "messages", "at least one"},
        {R"({"messages": "hi"})", "messages", "must be a list"},
        {R"({"messages": [{"role": "wizard", "content": "x"}]})", "messages[0].role", "wizard"},
        {R"({"messages": [{"role": "user"}]})", "messages[0].content", "required"},
        {R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content", "string"},
        {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", "messages[0].content[0]", "text part"},
        {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": "10"})", "max_tokens", "integer"},
        {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})", "max_tokens", "[1,"},
        {R"({"messages": [{"role": "user", "content": "x"}], "temperature": 3})", "temperature", "[0, 2]"},
        {R"({"messages": [{"role": "user", "content": "x"}], "top_p": 0})", "top_p", "above 0"},
        {R"({"messages": [{"role": "user", "content": "x"}], "stop": 5})", "stop", "string or a list"},
        {R"({"messages": [{"role": "user", "content": "x"}], "stop": [""]})", "stop", "empty"},
        {R"({"messages": [{"role": "user", "content": "x"}], "stream": "yes"})", "stream", "boolean"},
        {R"({"messages": [{"role": "user", "content": "x"}], "n": 2})", "n", "[1, 1]"},
        {R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})", "top_logprobs", "logprobs"},
        {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})", "tools[0]", "function"},
        {R"({"messages": [{"role": "user", "content": "x"}], "tool_choice": "always"})", "tool_choice", "always"},
        {R"({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"})", "tool_choice", "no tools"},
        {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "a"}}],
             "tool_choice": {"type": "function", "function": {"name": "b"}}})",
         "tool_choice", "'b'"},
        {R"({"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{x"}}]}]})",
         "messages[0].tool_calls[0].function.arguments", "not valid JSON"},
        {R"({"model": 7, "messages": [{"role": "user", "content": "x"}]})", "model", "string"},
    };
    for (const Case &c : cases) {
        const RequestError e = chat_error(c.body);
        EXPECT_EQ(e.status, 400) << c.body;
        EXPECT_EQ(e.param, c.param) << c.body;
        EXPECT_NE(std::string(e.what()).find(c.words), std::string::npos) << c.body << " -> " << e.what();
    }
}

TEST(ServerRequest, CompletionPrompts) {
    EXPECT_EQ(parse_completion_request(R"({"prompt": "Once"})").prompt, "Once");
    EXPECT_EQ(parse_completion_request(R"({"prompt": ["Once"]})").prompt, "Once");
    EXPECT_EQ(parse_completion_request(R"({"prompt": [5, 6]})").prompt_tokens, (std::vector<int32_t>{5, 6}));
    const CompletionRequest lp = parse_completion_request(R"({"prompt": "x", "logprobs": 2})");
    EXPECT_TRUE(lp.logprobs);
    EXPECT_EQ(lp.top_logprobs, 2);
    EXPECT_FALSE(lp.chat);
    for (const std::string body : {R"({})", R"({"prompt": ""})", R"({"prompt": 5})", R"({"prompt": [-1]})",
                                   R"({"prompt": ["a", "b"]})", R"({"prompt": []})"}) {
        const RequestError e = completion_error(body);
        EXPECT_EQ(e.status, 400) << body;
        EXPECT_EQ(e.param, "prompt") << body;
    }
    EXPECT_EQ(completion_error(R"({"prompt": "x", "echo": true})").param, "echo");
    EXPECT_EQ(completion_error(R"({"prompt": "x", "logprobs": 9})").param, "logprobs");
}

TEST(ServerResponse, ServerSentEvents) {
    const std::string event = mst::server::sse_event({{"text", "two\nlines"}});
    EXPECT_TRUE(event.starts_with("data: "));
    EXPECT_TRUE(event.ends_with("\n\n"));
    EXPECT_EQ(event.find('\n'), event.size() - 2) << "a raw newline inside would split the event";
    EXPECT_EQ(json::parse(event.substr(6)), json({{"text", "two\nlines"}}));
    EXPECT_EQ(mst::server::sse_done(), "data: [DONE]\n\n");
    // Bytes a model may write that are not UTF-8 do not break the stream.
    const std::string broken = mst::server::sse_event({{"text", std::string("a\xff") + "b"}});
    EXPECT_EQ(json::parse(broken.substr(6))["text"], "a\xef\xbf\xbd" "b");
}

TEST(ServerResponse, ErrorsAndFinishReasons) {
    const json e = mst::server::error_json(RequestError(404, "no such model", "model", "model_not_found"));
    EXPECT_EQ(e["error"]["message"], "no such model");
    EXPECT_EQ(e["error"]["type"], "invalid_request_error");
    EXPECT_EQ(e["error"]["param"], "model");
    EXPECT_EQ(e["error"]["code"], "model_not_found");
    EXPECT_TRUE(mst::server::error_json(RequestError(400, "x"))["error"]["param"].is_null());
    EXPECT_STREQ(mst::server::finish_reason(MST_STOP_EOS, false), "stop");
    EXPECT_STREQ(mst::server::finish_reason(MST_STOP_STRING, false), "stop");
    EXPECT_STREQ(mst::server::finish_reason(MST_STOP_MAX_TOKENS, false), "length");
    EXPECT_STREQ(mst::server::finish_reason(MST_STOP_CONTEXT_FULL, false), "length");
    EXPECT_STREQ(mst::server::finish_reason(MST_STOP_EOS, true), "tool_calls");
    const json calls = mst::server::tool_calls_json({{"", "f", "{}"}, {"own", "g", "{\"a\":1}"}}, "r1", 2);
    EXPECT_EQ(calls[0]["index"], 2);
    EXPECT_EQ(calls[0]["id"], "call_r1_2");
    EXPECT_EQ(calls[1]["id"], "own");
    EXPECT_EQ(calls[1]["function"]["arguments"], "{\"a\":1}");
    EXPECT_EQ(mst::server::usage_json(3, 4)["total_tokens"], 7);
}

}  // namespace
