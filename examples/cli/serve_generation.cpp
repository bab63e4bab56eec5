#include "serve_generation.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "server/openai_response.h"

namespace mst::cli {
namespace {

using nlohmann::json;
using server::CompletionRequest;
using server::RequestError;

// `null_content`: an assistant turn with only tool calls has content None, as OpenAI sends
// it (DeepSeek-V3's template needs that); else "" (Qwen3's cannot take None).
std::vector<mst::ChatMessage> template_messages(const CompletionRequest &request, bool null_content) {
    std::vector<mst::ChatMessage> out;
    for (const server::ChatMessage &m : request.messages) {
        mst::ChatMessage t;
        t.role = m.role;
        t.content = m.content.value_or("");
        t.content_is_null = null_content && !m.content.has_value();
        t.tool_calls_json = m.tool_calls_json;
        t.tool_call_id = m.tool_call_id;
        t.name = m.name;
        out.push_back(std::move(t));
    }
    return out;
}

json byte_list(const std::string &text) {
    json out = json::array();
    for (const unsigned char c : text) out.push_back(int(c));
    return out;
}

// The token's log-probability under the logits it was sampled from, and the `top` most
// likely tokens'.
json logprob_entry(const ModelHandle &model, const float *logits, size_t n_vocab, int32_t token, int32_t top) {
    const float max = *std::max_element(logits, logits + n_vocab);
    double sum = 0.0;
    for (size_t i = 0; i < n_vocab; ++i) sum += std::exp(double(logits[i]) - max);
    const double log_norm = double(max) + std::log(sum);
    const auto lp = [&](int32_t id) { return double(logits[size_t(id)]) - log_norm; };
    const std::string text = model.detokenize({token});
    json entry = {{"token", text}, {"logprob", lp(token)}, {"bytes", byte_list(text)}, {"top_logprobs", json::array()}};
    if (top > 0) {
        std::vector<int32_t> ids(n_vocab);
        std::iota(ids.begin(), ids.end(), 0);
        const size_t k = std::min(size_t(top), n_vocab);
        std::partial_sort(ids.begin(), ids.begin() + ptrdiff_t(k), ids.end(),
                          [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)]; });
        for (size_t i = 0; i < k; ++i) {
            const std::string t = model.detokenize({ids[i]});
            entry["top_logprobs"].push_back({{"token", t}, {"logprob", lp(ids[i])}, {"bytes", byte_list(t)}});
        }
    }
    return entry;
}

// Keep the longest prefix the session shares with the prompt, at least one prompt token
// short (the next logits come from evaluating it); a recurrent state that cannot be
// rewound starts over. Returns the tokens kept.
size_t reuse_prefix(SessionPool::Slot &slot, const std::vector<int32_t> &prompt) {
    const auto end = std::mismatch(slot.tokens.begin(), slot.tokens.end(), prompt.begin(), prompt.end());
    size_t keep = std::min(size_t(end.first - slot.tokens.begin()), prompt.size() - 1);
    if (slot.session.n_past() != slot.tokens.size()) keep = 0;  // out of step: trust nothing
    if (keep < slot.session.n_past()) {
        if (mst_session_trim(slot.session.get(), keep) != MST_OK) {
            keep = 0;
            slot.session.trim(0);
        }
    }
    slot.tokens.resize(keep);
    return keep;
}

}  // namespace

std::vector<int32_t> prompt_tokens(const ServeContext &ctx, const CompletionRequest &request) {
    std::vector<int32_t> tokens;
    if (!request.chat && !request.prompt_tokens.empty()) {
        const int32_t n_vocab = ctx.model.info().n_vocab;
        for (const int32_t t : request.prompt_tokens)
            if (t >= n_vocab) throw RequestError(400, fmt::format("prompt token {} is outside the vocabulary (0..{})", t, n_vocab - 1), "prompt");
        tokens = request.prompt_tokens;
    } else {
        std::string text = request.prompt;
        if (request.chat) {
            mst_chat_template_params tp = chat_template_params();
            tp.add_generation_prompt = 1;
            tp.tools_json = request.tools_json.empty() ? nullptr : request.tools_json.c_str();
            const bool any_null = std::any_of(request.messages.begin(), request.messages.end(),
                                              [](const server::ChatMessage &m) { return !m.content.has_value(); });
            try {
                try {
                    text = apply_chat_template(ctx.model, template_messages(request, true), tp);
                } catch (const Exception &e) {
                    if (!any_null || e.status() != MST_ERR_INVALID_ARGUMENT) throw;
                    text = apply_chat_template(ctx.model, template_messages(request, false), tp);
                }
            } catch (const Exception &e) {
                if (e.status() == MST_ERR_UNSUPPORTED) throw RequestError(400, "this model has no chat template; use /v1/completions", "messages");
                throw RequestError(400, fmt::format("the chat template refused the messages: {}", e.what()), "messages");
            }
            // The template writes the special tokens it wants; drop those the tokenizer adds to any text.
            tokens = ctx.model.tokenize(text);
            const auto &added = ctx.added_tokens;
            if (!added.empty() && tokens.size() >= added.size() && std::equal(added.begin(), added.end(), tokens.begin()))
                tokens.erase(tokens.begin(), tokens.begin() + ptrdiff_t(added.size()));
        } else {
            tokens = ctx.model.tokenize(text);
        }
    }
    if (tokens.empty()) throw RequestError(400, "the prompt is empty after tokenization", request.chat ? "messages" : "prompt");
    if (tokens.size() >= size_t(ctx.n_ctx))
        throw RequestError(400,
                           fmt::format("the prompt takes {} tokens; the context holds {} (no room for an answer)",
                                       tokens.size(), ctx.n_ctx),
                           request.chat ? "messages" : "prompt", "context_length_exceeded");
    return tokens;
}

AnswerOutcome generate_answer(ServeContext &ctx, SessionPool::Slot &slot, const CompletionRequest &request,
                              const std::vector<int32_t> &prompt, const PieceSink &sink) {
    const auto start = std::chrono::steady_clock::now();
    AnswerOutcome outcome;
    outcome.prompt_tokens = prompt.size();
    const bool parse = request.chat && (!request.tools_json.empty() || ctx.tool_format == ToolCallFormat::Harmony);
    ToolCallParser parser(parse ? ctx.tool_format : ToolCallFormat::None);

    mst_generate_params gp = generate_params();
    const int32_t room = ctx.n_ctx - int32_t(prompt.size());
    gp.max_tokens = std::min(request.max_tokens.value_or(room), room);
    gp.sampler.temperature = request.temperature;
    gp.sampler.top_k = request.top_k;
    gp.sampler.top_p = request.top_p;
    gp.sampler.min_p = 0.0f;
    gp.sampler.repetition_penalty = 1.0f;
    std::vector<const char *> stop;
    for (const std::string &s : request.stop) stop.push_back(s.c_str());
    gp.stop = stop.data();
    gp.n_stop = stop.size();
    gp.batcher = ctx.batcher.get();

    SessionHandle &session = slot.session;
    try {
        if (request.seed) session.set_seed(*request.seed);
        outcome.reused_tokens = reuse_prefix(slot, prompt);
        const std::vector<int32_t> rest(prompt.begin() + ptrdiff_t(outcome.reused_tokens), prompt.end());
        std::vector<int32_t> generated;
        bool client_gone = false;
        const mst_stop_reason reason = session.generate(rest, gp, [&](int32_t token, std::string_view text) {
            generated.push_back(token);
            AnswerPiece piece;
            if (request.logprobs) {
                const float *logits = nullptr;
                size_t n_vocab = 0;
                if (mst_session_logits(session.get(), &logits, &n_vocab) == MST_OK)
                    piece.logprobs.push_back(logprob_entry(ctx.model, logits, n_vocab, token, request.top_logprobs));
            }
            const ToolCallDelta d = parser.push(text);
            piece.content = d.content;
            piece.reasoning = d.reasoning;
            piece.calls = d.calls;
            outcome.tool_calls = outcome.tool_calls || !d.calls.empty();
            client_gone = !sink(piece);
            return client_gone || ctx.cancel.load();
        });
        slot.tokens = prompt;
        slot.tokens.insert(slot.tokens.end(), generated.begin(), generated.end());
        outcome.reason = reason;
        outcome.completion_tokens = generated.size();
        if (!client_gone) {
            const ToolCallDelta d = parser.finish();
            outcome.tool_calls = outcome.tool_calls || !d.calls.empty();
            if (!d.content.empty() || !d.reasoning.empty() || !d.calls.empty())
                sink(AnswerPiece{d.content, d.reasoning, d.calls, json::array()});
        }
    } catch (...) {
        // The context is no longer known: start the session afresh next time.
        slot.tokens.clear();
        session.reset();
        throw;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ctx.metrics.count_generation(outcome.prompt_tokens, outcome.reused_tokens, outcome.completion_tokens, seconds);
    return outcome;
}

}  // namespace mst::cli
