// `moestream serve`: an OpenAI-compatible HTTP server over one model (serve_http.h has the
// endpoints, serve_pool.h the scheduling). SIGTERM or SIGINT: stop taking requests, let
// those running finish for --shutdown-timeout seconds, cancel the rest, exit 0.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "budget_options.h"
#include "cli_args.h"
#include "commands.h"
#include "model_options.h"
#include "sampling_options.h"
#include "serve_http.h"

namespace mst::cli {
namespace {

const char *const kServeHelp =
    "usage: moestream serve -m PATH [options]\n"
    "An OpenAI-compatible HTTP server: POST /v1/chat/completions and /v1/completions (streamed as\n"
    "server-sent events with \"stream\": true), GET /v1/models, /health and /metrics (Prometheus).\n"
    "Chat requests go through the model's chat template, tools included; the model's tool calls\n"
    "come back as tool_calls. SIGTERM or SIGINT stops it cleanly (exit status 0).\n"
    "  --host ADDR             address to listen on (default 127.0.0.1)\n"
    "  --port N                port (default 8080; 0 picks a free one); the address is printed on\n"
    "                          stderr as \"listening on http://HOST:PORT\"\n"
    "  --alias NAME            the model's name in requests and /v1/models (default: the file or\n"
    "                          directory name of -m)\n"
    "  --parallel N            sessions, i.e. requests answered at once (default 1); their next\n"
    "                          tokens are evaluated as one batch per step, so an expert read from\n"
    "                          disk serves every request routed to it\n"
    "  --queue N               requests that may wait for a session (default 16); beyond them 503\n"
    "  --ctx N, -c N           context of each session in tokens (default: the model's, at most 4096);\n"
    "                          a prompt that leaves no room for an answer is refused (400)\n"
    "  --batch N, -b N         tokens per forward pass in prefill (default 512)\n"
    "  --seed N, -s N          the sessions' seed when a request gives none (default 24301)\n"
    "  --shutdown-timeout S    seconds running requests may take to finish on SIGTERM before they\n"
    "                          are cancelled (default 10)\n"
    "Sampling comes from each request (temperature, top_p, top_k, seed, stop, max_tokens); a\n"
    "session keeps its context after a request, and a later prompt that starts with the same\n"
    "tokens evaluates only the rest.\n";

constexpr size_t kMaxBodyBytes = size_t(32) << 20;

std::string default_alias(std::string path) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    const size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string model_template(const ModelHandle &model) {
    size_t n = 0;
    const mst_status s = mst_model_chat_template(model.get(), nullptr, nullptr, 0, &n);
    if (s != MST_ERR_BUFFER_TOO_SMALL && s != MST_OK) return "";
    std::string text(n + 1, '\0');
    if (mst_model_chat_template(model.get(), nullptr, text.data(), text.size(), &n) != MST_OK) return "";
    text.resize(n);
    return text;
}

// Wait for SIGTERM or SIGINT (blocked in every thread, taken here).
int wait_for_stop_signal() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int signal = 0;
    while (sigwait(&set, &signal) != 0) {
    }
    return signal;
}

bool wait_until_idle(const ServeContext &ctx, std::chrono::duration<double> limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (ctx.metrics.in_flight.load() > 0) {
        if (std::chrono::steady_clock::now() >= until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

}  // namespace

int cmd_serve(const std::vector<std::string> &argv) {
    std::vector<std::string> flags = model_option_flags();
    flags.push_back("help");
    std::map<std::string, std::string> aliases = model_option_aliases();
    aliases.merge(generation_option_aliases());
    const Args args(argv, flags, aliases);
    if (args.flag("help")) {
        fmt::print("{}{}model options:\n{}", kServeHelp, kBudgetOptionsHelp, kModelOptionsHelp);
        return 0;
    }
    std::vector<std::string> known = model_option_names();
    known.insert(known.end(), {"host", "port", "alias", "parallel", "queue", "ctx", "batch", "seed", "shutdown-timeout", "help"});
    for (const std::string &name : budget_option_names()) known.push_back(name);
    args.reject_unknown(known);
    args.reject_positional();
    const std::string path = args.require("model");
    const std::string host = args.get_or("host", "127.0.0.1");
    const int port = int(args.int_in("port", 8080, 0, 65535));
    const int parallel = int(args.int_in("parallel", 1, 1, 256));
    const int queue = int(args.int_in("queue", 16, 0, 4096));
    const double shutdown_timeout = args.float_in("shutdown-timeout", 10.0, 0.0, 3600.0);
    std::string backend, storage, cache_policy;
    const mst_model_params mp = model_params_from(args, backend, storage, cache_policy);
    const mst_session_params sp = session_params_from(args);
    const mst_expert_budget budget = budget_from(args, mp.experts_per_token);

    // Every thread started from here on (the library's, the server's) inherits the mask,
    // so the signals reach only wait_for_stop_signal.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    const ModelHandle model(path, mp);
    const mst_model_info info = model.info();
    const int32_t model_max = info.max_position_embeddings > 0 ? info.max_position_embeddings : 4096;
    SessionPool pool(model, sp, budget, parallel, queue);
    ServeContext ctx(model, args.get_or("alias", default_alias(path)),
                     sp.n_ctx ? int32_t(sp.n_ctx) : std::min(model_max, 4096), pool);
    ctx.tool_format = detect_tool_call_format(model_template(model), info.architecture);
    // DeepSeek-V3's template concatenates past calls' arguments as text.
    ctx.arguments_as_objects = ctx.tool_format != ToolCallFormat::DeepSeek;

    httplib::Server server;
    std::atomic<bool> draining{false};
    const size_t threads = size_t(parallel + queue + 4);
    server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    server.set_payload_max_length(kMaxBodyBytes);
    install_routes(server, ctx, draining);
    const int bound = port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
    if (bound < 0) {
        fmt::print(stderr, "moestream serve: cannot listen on {}:{}\n", host, port);
        return 1;
    }
    fmt::print(stderr, "moestream serve: {} ({} tool calls) with {} session(s) of {} tokens; listening on http://{}:{}\n",
               ctx.model_name, tool_call_format_name(ctx.tool_format), parallel, ctx.n_ctx, host, bound);
    std::thread listener([&] { server.listen_after_bind(); });

    const int signal = wait_for_stop_signal();
    fmt::print(stderr, "moestream serve: {} received; finishing {} request(s)\n", signal == SIGINT ? "SIGINT" : "SIGTERM",
               ctx.metrics.in_flight.load());
    draining = true;
    if (!wait_until_idle(ctx, std::chrono::duration<double>(shutdown_timeout))) {
        ctx.cancel = true;  // generations stop at their next token
        pool.close();       // those still waiting for a session give up
        wait_until_idle(ctx, std::chrono::seconds(30));
    }
    server.stop();
    listener.join();
    fmt::print(stderr, "moestream serve: stopped\n");
    return 0;
}

}  // namespace mst::cli
