// One request's answer in `moestream serve`: its prompt tokens (the chat template rendered
// with its messages and tools, or the completion prompt), then generation on a leased
// session, reusing the prefix the session already holds, with the text split into content,
// reasoning and tool calls as it streams.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "chat/tool_calls.h"
#include "moestream.hpp"
#include "serve_metrics.h"
#include "serve_pool.h"
#include "server/openai_request.h"

namespace mst::cli {

// What every request of a server shares.
struct ServeContext {
    ServeContext(const ModelHandle &served, std::string name, int32_t context, SessionPool &sessions)
        : model(served), model_name(std::move(name)), n_ctx(context), added_tokens(served.tokenize("")), pool(sessions),
          batcher(served) {}

    const ModelHandle &model;
    std::string model_name;
    int32_t n_ctx = 0;
    ToolCallFormat tool_format = ToolCallFormat::None;
    bool arguments_as_objects = true;  // how the template wants past calls' arguments
    std::vector<int32_t> added_tokens; // what the tokenizer adds to any text (its BOS)
    SessionPool &pool;
    BatcherHandle batcher;  // the running requests' evaluations, one batch per step
    ServeMetrics metrics;
    std::atomic<bool> cancel{false};   // shutdown: stop every generation at its next token
};

// The prompt's tokens. Throws server::RequestError: a template that refuses the messages
// (400), a prompt that leaves no room in the context (400, context_length_exceeded).
std::vector<int32_t> prompt_tokens(const ServeContext &ctx, const server::CompletionRequest &request);

// What one step of generation gives: text, reasoning, calls completed, and with logprobs
// one entry per token ({"token", "logprob", "bytes", "top_logprobs"}).
struct AnswerPiece {
    std::string content, reasoning;
    std::vector<ToolCall> calls;
    nlohmann::json logprobs = nlohmann::json::array();
};
// Return false to stop (the client has gone).
using PieceSink = std::function<bool(const AnswerPiece &)>;

struct AnswerOutcome {
    mst_stop_reason reason = MST_STOP_NONE;
    size_t prompt_tokens = 0, reused_tokens = 0, completion_tokens = 0;
    bool tool_calls = false;
};

AnswerOutcome generate_answer(ServeContext &ctx, SessionPool::Slot &slot, const server::CompletionRequest &request,
                              const std::vector<int32_t> &prompt, const PieceSink &sink);

}  // namespace mst::cli
