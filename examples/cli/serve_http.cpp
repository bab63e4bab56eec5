#include "serve_http.h"

#include <fmt/format.h>

#include <chrono>
#include <memory>
#include <optional>

#include "server/openai_response.h"

namespace mst::cli {
namespace {

using nlohmann::json;
using server::CompletionRequest;
using server::RequestError;

int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string request_id() {
    static std::atomic<uint64_t> next{1};
    return fmt::format("{:x}{:06x}", unix_now(), next.fetch_add(1));
}

void send_error(httplib::Response &res, const RequestError &e) {
    res.status = e.status;
    res.set_content(server::to_text(server::error_json(e)), "application/json");
}

// The answer's pieces as one chat message or completion text.
struct Collected {
    std::string content, reasoning;
    std::vector<ToolCall> calls;
    json logprobs = json::array();
    void add(const AnswerPiece &p) {
        content += p.content;
        reasoning += p.reasoning;
        calls.insert(calls.end(), p.calls.begin(), p.calls.end());
        for (const json &e : p.logprobs) logprobs.push_back(e);
    }
};

// Chat logprobs entries in the completions API's form.
json completion_logprobs(const json &entries) {
    json out = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
                {"text_offset", json::array()}};
    size_t offset = 0;
    for (const json &e : entries) {
        out["tokens"].push_back(e["token"]);
        out["token_logprobs"].push_back(e["logprob"]);
        json top = json::object();
        for (const json &t : e["top_logprobs"]) top[t["token"].get<std::string>()] = t["logprob"];
        out["top_logprobs"].push_back(top);
        out["text_offset"].push_back(offset);
        offset += e["token"].get<std::string>().size();
    }
    return out;
}

// Counts a completion request in flight for as long as it lives: a streamed answer's
// provider holds it until the stream ends, after the handler has returned.
class InFlight {
public:
    explicit InFlight(std::atomic<int> &n) : n_(n) { ++n_; }
    ~InFlight() { --n_; }
    InFlight(const InFlight &) = delete;
    InFlight &operator=(const InFlight &) = delete;

private:
    std::atomic<int> &n_;
};

class CompletionHandler {
public:
    CompletionHandler(ServeContext &ctx, const std::atomic<bool> &draining) : ctx_(ctx), draining_(draining) {}

    void handle(const httplib::Request &req, httplib::Response &res, bool chat) {
        const char *endpoint = chat ? "/v1/chat/completions" : "/v1/completions";
        const auto in_flight = std::make_shared<InFlight>(ctx_.metrics.in_flight);
        try {
            answer(req, res, chat, in_flight);
        } catch (const RequestError &e) {
            send_error(res, e);
        } catch (const std::exception &e) {
            send_error(res, RequestError(500, e.what(), "", "internal_error", "server_error"));
        }
        ctx_.metrics.count_request(endpoint, res.status == -1 ? 200 : res.status);  // -1: httplib's 200 to come
    }

private:
    void answer(const httplib::Request &req, httplib::Response &res, bool chat, std::shared_ptr<InFlight> in_flight) {
        if (draining_) throw RequestError(503, "the server is shutting down", "", "shutting_down", "server_error");
        auto request = std::make_shared<CompletionRequest>(
            chat ? server::parse_chat_request(req.body, ctx_.arguments_as_objects)
                 : server::parse_completion_request(req.body));
        if (!request->model.empty() && request->model != ctx_.model_name)
            throw RequestError(404, fmt::format("the model '{}' does not exist; this server serves '{}'",
                                                request->model, ctx_.model_name),
                               "model", "model_not_found");
        auto prompt = std::make_shared<std::vector<int32_t>>(prompt_tokens(ctx_, *request));
        std::optional<SessionPool::Lease> lease = ctx_.pool.acquire(*prompt);
        if (!lease)
            throw RequestError(503, "the server is busy: every session is answering and the wait queue is full; retry later",
                               "", "server_overloaded", "server_error");
        const std::string id = (chat ? "chatcmpl-" : "cmpl-") + request_id();
        if (request->stream) {
            auto held = std::make_shared<SessionPool::Lease>(std::move(*lease));
            res.set_header("Cache-Control", "no-cache");
            res.set_chunked_content_provider("text/event-stream", [this, request, prompt, held, id, chat, in_flight](
                                                                      size_t, httplib::DataSink &sink) {
                stream(*request, *prompt, held->slot(), id, chat, sink);
                sink.done();
                return true;
            });
            return;
        }
        Collected all;
        const AnswerOutcome outcome =
            generate_answer(ctx_, lease->slot(), *request, *prompt, [&](const AnswerPiece &p) { return all.add(p), true; });
        json choice = {{"index", 0}, {"finish_reason", server::finish_reason(outcome.reason, outcome.tool_calls)}};
        if (chat) {
            json message = {{"role", "assistant"}, {"content", all.content}};
            if (!all.reasoning.empty()) message["reasoning_content"] = all.reasoning;
            if (!all.calls.empty()) {
                message["tool_calls"] = server::tool_calls_json(all.calls, id, 0);
                if (all.content.find_first_not_of(" \n\r\t") == std::string::npos) message["content"] = nullptr;
            }
            choice["message"] = message;
            choice["logprobs"] = request->logprobs ? json{{"content", all.logprobs}} : json();
        } else {
            choice["text"] = all.content;
            choice["logprobs"] = request->logprobs ? completion_logprobs(all.logprobs) : json();
        }
        const json body = {{"id", id},
                           {"object", chat ? "chat.completion" : "text_completion"},
                           {"created", unix_now()},
                           {"model", ctx_.model_name},
                           {"choices", json::array({choice})},
                           {"usage", server::usage_json(outcome.prompt_tokens, outcome.completion_tokens)}};
        res.set_content(server::to_text(body), "application/json");
    }

    void stream(const CompletionRequest &request, const std::vector<int32_t> &prompt, SessionPool::Slot &slot,
                const std::string &id, bool chat, httplib::DataSink &sink) {
        const int64_t created = unix_now();
        const auto chunk = [&](json choice) {
            return json{{"id", id},
                        {"object", chat ? "chat.completion.chunk" : "text_completion"},
                        {"created", created},
                        {"model", ctx_.model_name},
                        {"choices", json::array({std::move(choice)})}};
        };
        const auto send = [&](const std::string &event) { return sink.write(event.data(), event.size()); };
        if (chat && !send(server::sse_event(chunk({{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                                                    {"logprobs", nullptr}, {"finish_reason", nullptr}}))))
            return;
        size_t n_calls = 0;
        AnswerOutcome outcome;
        try {
            outcome = generate_answer(ctx_, slot, request, prompt, [&](const AnswerPiece &p) {
                if (p.content.empty() && p.reasoning.empty() && p.calls.empty() && p.logprobs.empty()) return true;
                json choice = {{"index", 0}, {"finish_reason", nullptr}};
                if (chat) {
                    json delta = json::object();
                    if (!p.content.empty()) delta["content"] = p.content;
                    if (!p.reasoning.empty()) delta["reasoning_content"] = p.reasoning;
                    if (!p.calls.empty()) delta["tool_calls"] = server::tool_calls_json(p.calls, id, n_calls);
                    n_calls += p.calls.size();
                    choice["delta"] = delta;
                    choice["logprobs"] = request.logprobs ? json{{"content", p.logprobs}} : json();
                } else {
                    choice["text"] = p.content;
                    choice["logprobs"] = request.logprobs ? completion_logprobs(p.logprobs) : json();
                }
                return send(server::sse_event(chunk(choice)));
            });
        } catch (const std::exception &e) {
            // Headers are gone: the error travels as an event, as OpenAI's streams do.
            send(server::sse_event(server::error_json(RequestError(500, e.what(), "", "internal_error", "server_error"))));
            send(server::sse_done());
            return;
        }
        json last = {{"index", 0}, {"finish_reason", server::finish_reason(outcome.reason, outcome.tool_calls)},
                     {"logprobs", nullptr}};
        if (chat) last["delta"] = json::object();
        else last["text"] = "";
        send(server::sse_event(chunk(last)));
        if (request.include_usage) {
            json usage = chunk(json());
            usage["choices"] = json::array();
            usage["usage"] = server::usage_json(outcome.prompt_tokens, outcome.completion_tokens);
            send(server::sse_event(usage));
        }
        send(server::sse_done());
    }

    ServeContext &ctx_;
    const std::atomic<bool> &draining_;
};

}  // namespace

void install_routes(httplib::Server &server, ServeContext &ctx, const std::atomic<bool> &draining) {
    auto completions = std::make_shared<CompletionHandler>(ctx, draining);
    server.Post("/v1/chat/completions", [completions](const httplib::Request &req, httplib::Response &res) {
        completions->handle(req, res, true);
    });
    server.Post("/v1/completions", [completions](const httplib::Request &req, httplib::Response &res) {
        completions->handle(req, res, false);
    });
    server.Get("/v1/models", [&ctx](const httplib::Request &, httplib::Response &res) {
        const json body = {{"object", "list"},
                           {"data", json::array({{{"id", ctx.model_name},
                                                  {"object", "model"},
                                                  {"created", unix_now()},
                                                  {"owned_by", "moestream"},
                                                  {"context_length", ctx.n_ctx}}})}};
        res.set_content(server::to_text(body), "application/json");
        ctx.metrics.count_request("/v1/models", 200);
    });
    server.Get("/health", [&ctx, &draining](const httplib::Request &, httplib::Response &res) {
        res.status = draining ? 503 : 200;
        res.set_content(draining ? R"({"status":"shutting down"})" : R"({"status":"ok"})", "application/json");
        ctx.metrics.count_request("/health", res.status);
    });
    server.Get("/metrics", [&ctx](const httplib::Request &, httplib::Response &res) {
        ctx.metrics.count_request("/metrics", 200);
        res.set_content(ctx.metrics.prometheus(ctx.model, ctx.pool.size(), ctx.pool.busy(), ctx.pool.waiting(),
                                               ctx.batcher.stats()),
                        "text/plain; version=0.0.4");
    });
    // Unknown paths and methods, and anything a handler let escape, in OpenAI's shape too.
    server.set_error_handler([](const httplib::Request &req, httplib::Response &res) {
        if (!res.body.empty()) return;
        send_error(res, RequestError(res.status, fmt::format("no route for {} {}", req.method, req.path), "", "not_found"));
    });
    server.set_exception_handler([](const httplib::Request &, httplib::Response &res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception &e) {
            what = e.what();
        } catch (...) {
        }
        send_error(res, RequestError(500, what, "", "internal_error", "server_error"));
    });
}

}  // namespace mst::cli
