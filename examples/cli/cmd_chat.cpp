// `moestream chat`: a conversation on the terminal (or a script on stdin) through the
// model's own chat template. The session keeps the conversation between turns, so each
// turn evaluates only its new tokens; see chat_conversation.h for when it cannot.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "budget_options.h"
#include "chat_conversation.h"
#include "chat_input.h"
#include "cli_args.h"
#include "commands.h"
#include "human.h"
#include "model_options.h"
#include "sampling_options.h"
#include "moestream.hpp"
#include "progress_line.h"

namespace mst::cli {
namespace {

const char *const kChatHelp =
    "usage: moestream chat -m PATH [options]\n"
    "Talk with a model through its own chat template (chat_template.jinja or tokenizer_config.json).\n"
    "Type a message and Enter; a line ending in \\ continues the message on the next line. Answers\n"
    "stream to stdout. Reads stdin, so a conversation can be piped in. Commands:\n"
    "  /reset   forget the conversation (the system message stays) and the session's context\n"
    "  /stats   the session's tokens, speed, expert bytes read and expert-cache hits (stderr)\n"
    "  /exit    end (as does end of input; also /quit)\n"
    "A message of your own that starts with / is written with two: //etc/hosts sends /etc/hosts.\n"
    "Ctrl-C stops the answer being written and returns to the prompt (a second one before it\n"
    "stops ends at once); Ctrl-C at the prompt ends (exit status 130).\n"
    "Only the tokens a turn adds are evaluated; a template that rewrites earlier turns makes the\n"
    "session start over (--verbose says when).\n"
    "  --system TEXT             a system message opening the conversation\n"
    "  --think, --no-think       set the template variable enable_thinking to true / false\n"
    "  --template-var NAME=JSON  a template variable, its value as JSON (repeatable), e.g.\n"
    "                            enable_thinking=false or reasoning_effort='\"high\"'; overrides\n"
    "                            --think / --no-think\n"
    "  --verbose                 say on stderr how many tokens each turn evaluated and when the\n"
    "                            template rewrote history\n"
    "  -n, --max-tokens N        at most N tokens per answer, -1 = until the end of the turn or a\n"
    "                            full context (default -1; also --n-predict)\n"
    "  -s, --seed S              sampling seed (default 24301)\n"
    "  --ignore-eos              do not end an answer at the end-of-turn token (answers then end at -n)\n"
    "  -c, --ctx N               context length (default min(model maximum, 4096); also --ctx-size)\n"
    "  -b, --batch N             prompt tokens per forward pass, 1..65536 (default 512; also --batch-size)\n";

// The template variables as one JSON object: --think / --no-think, then each --template-var.
std::string template_variables(const Args &args) {
    if (args.flag("think") && args.flag("no-think")) throw UsageError("options --think and --no-think exclude each other");
    std::vector<std::pair<std::string, std::string>> vars;  // name, JSON value
    for (const std::string &var : args.all("template-var")) {
        const size_t eq = var.find('=');
        if (eq == 0 || eq == std::string::npos || eq + 1 == var.size())
            throw UsageError(fmt::format("option --template-var takes NAME=JSON, got '{}'", var));
        const std::string name = var.substr(0, eq);
        for (char c : name)
            if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
                throw UsageError(fmt::format("option --template-var: bad variable name '{}'", name));
        std::erase_if(vars, [&](const auto &v) { return v.first == name; });  // the last one given wins
        vars.emplace_back(name, var.substr(eq + 1));
    }
    const bool thinking_set = std::any_of(vars.begin(), vars.end(), [](const auto &v) { return v.first == "enable_thinking"; });
    if ((args.flag("think") || args.flag("no-think")) && !thinking_set)
        vars.emplace_back("enable_thinking", args.flag("think") ? "true" : "false");
    std::string fields;
    for (const auto &[name, value] : vars) fields += fmt::format("{}\"{}\": {}", fields.empty() ? "" : ", ", name, value);
    return fields.empty() ? std::string() : "{" + fields + "}";
}

void print_stats(const ModelHandle &model, const SessionHandle &session, const Conversation &conversation) {
    const mst_session_stats s = session.stats();
    const mst_cache_stats c = model.cache_stats();
    const uint64_t lookups = s.expert_cache_hits + s.expert_cache_misses;
    fmt::print(stderr, "context: {} tokens, {} turns\n", session.n_past(), conversation.turns());
    fmt::print(stderr, "prompt:  {} tokens in {:.2f} s ({:.1f} tok/s)\n", s.n_prompt_tokens, s.prompt_seconds,
               s.prompt_tokens_per_second);
    fmt::print(stderr, "decode:  {} tokens in {:.2f} s ({:.1f} tok/s)\n", s.n_decode_tokens, s.decode_seconds,
               s.decode_tokens_per_second);
    fmt::print(stderr, "experts: {} read in {:.2f} s waiting, hits {} / misses {} ({:.1f}% hit); cache holds {}\n",
               bytes_str(s.expert_bytes_read), s.expert_read_seconds, s.expert_cache_hits, s.expert_cache_misses,
               lookups ? 100.0 * double(s.expert_cache_hits) / double(lookups) : 0.0, bytes_str(c.bytes_held));
}

struct ChatOptions {
    mst_generate_params generate{};
    bool verbose = false;
};

// One turn: plan, evaluate, stream the answer. Errors of the template or the context are
// reported and the turn is dropped; the conversation goes on.
void chat_turn(const ModelHandle &model, SessionHandle &session, Conversation &conversation,
               ChatInterrupts &interrupts, const ChatOptions &options, const std::string &user_text) {
    TurnPlan plan;
    try {
        plan = conversation.plan(user_text);
    } catch (const Exception &e) {
        fmt::print(stderr, "chat template: {}\n", e.what());
        return;
    }
    if (plan.restart) {
        if (options.verbose)
            fmt::print(stderr, "[the template rewrote earlier turns: {} of {} context tokens still match; "
                               "evaluating the conversation again]\n",
                       plan.common_tokens, conversation.context_tokens());
        session.reset();
        conversation.session_cleared(true);
    }
    const size_t before = session.n_past();
    std::vector<int32_t> answer;
    interrupts.clear();
    mst_stop_reason reason = MST_STOP_NONE;
    try {
        reason = session.generate(plan.tokens, options.generate, [&](int32_t token, std::string_view piece) {
            // Every token shown here is in the session afterwards, the one that stops it too.
            answer.push_back(token);
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
            return interrupts.pending();
        });
    } catch (const Exception &e) {
        if (!answer.empty()) std::fputs("\n", stdout);  // end the answer's line
        fmt::print(stderr, "{}\n", e.what());
        if (session.n_past() != before) {  // not the prompt's own failure: start the next turn afresh
            session.reset();
            conversation.session_cleared(true);
        }
        if (e.status() == MST_ERR_CONTEXT_FULL) fmt::print(stderr, "(/reset starts a new conversation)\n");
        return;
    }
    std::fputs("\n", stdout);
    std::fflush(stdout);
    // generate evaluated the end-of-turn token too (any of the model's end-of-sequence ids);
    // it is the template's end marker, not part of the answer's text.
    int32_t end_of_turn = -1;
    if (reason == MST_STOP_EOS && !answer.empty()) {
        end_of_turn = answer.back();
        answer.pop_back();
    }
    try {
        conversation.commit(user_text, plan, answer, end_of_turn);
    } catch (const Exception &e) {  // the answer's text is unknown: the next turn starts afresh
        fmt::print(stderr, "{}\n", e.what());
        session.reset();
        conversation.session_cleared(true);
        return;
    }
    if (reason == MST_STOP_CONTEXT_FULL) fmt::print(stderr, "[the context is full; /reset starts a new conversation]\n");
    if (interrupts.pending()) fmt::print(stderr, "[interrupted]\n");
    if (options.verbose)
        fmt::print(stderr, "[turn {}: evaluated {} prompt tokens and {} answer tokens; context {} tokens]\n",
                   conversation.turns(), plan.tokens.size(), answer.size() + (end_of_turn >= 0 ? 1 : 0), session.n_past());
    interrupts.clear();
}

}  // namespace

int cmd_chat(const std::vector<std::string> &argv) {
    const std::optional<Args> parsed =
        generation_command_args(argv, kChatHelp, {"think", "no-think", "verbose"},
                                {"system", "think", "no-think", "template-var", "verbose"}, {});
    if (!parsed) return 0;
    const Args &args = *parsed;
    const std::string path = args.require("model");

    std::string backend, storage, cache_policy;
    const mst_model_params mp = model_params_from(args, backend, storage, cache_policy);
    const mst_session_params sp = session_params_from(args);
    ChatOptions options;
    options.verbose = args.flag("verbose");
    mst_generate_params &gp = options.generate;
    gp = generate_params_from(args, -1);
    const std::string variables = template_variables(args);
    mst_chat_template_params tp = chat_template_params();
    tp.variables_json = variables.empty() ? nullptr : variables.c_str();
    const mst_expert_budget budget = budget_from(args, mp.experts_per_token);

    const ModelHandle model(path, mp);
    size_t template_bytes = 0;
    const mst_status has_template = mst_model_chat_template(model.get(), nullptr, nullptr, 0, &template_bytes);
    if (has_template == MST_ERR_UNSUPPORTED) {
        fmt::print(stderr, "moestream chat: {} has no chat template (no chat_template.jinja, no \"chat_template\" in "
                           "tokenizer_config.json); use moestream run with a prompt instead\n", path);
        return 1;
    }
    if (has_template != MST_OK && has_template != MST_ERR_BUFFER_TOO_SMALL) check(has_template);
    SessionHandle session(model, sp);
    check(mst_session_set_expert_budget(session.get(), &budget));
    Conversation conversation(model, tp, args.get_or("system", ""));
    // A bad --template-var or a template that cannot render at all fails here, not at each turn.
    try {
        (void)conversation.plan("Hello");
    } catch (const Exception &e) {
        fmt::print(stderr, "moestream chat: the chat template does not render: {}\n", e.what());
        return 1;
    }

    ChatInterrupts interrupts;
    ChatInput input(interrupts);
    if (input.terminal())
        fmt::print(stderr, "chat with {} (/reset, /stats, /exit; a line ending in \\ continues)\n", path);
    for (;;) {
        const Input message = input.next();
        if (message.status == InputStatus::Interrupted) {
            if (input.terminal()) std::fputs("\n", stdout);
            return kInterruptedExit;
        }
        if (message.status == InputStatus::End) return 0;
        std::string text = message.text;
        if (text.find_first_not_of(" \t\n") == std::string::npos) continue;
        if (text.starts_with("//")) {
            text.erase(0, 1);
        } else if (text.front() == '/') {
            const std::string command = text.substr(0, text.find_last_not_of(" \t") + 1);
            if (command == "/exit" || command == "/quit") return 0;
            if (command == "/reset") {
                session.reset();
                conversation.session_cleared(false);
                fmt::print(stderr, "[conversation reset]\n");
            } else if (command == "/stats") {
                print_stats(model, session, conversation);
            } else {
                fmt::print(stderr, "unknown command '{}' (commands: /reset, /stats, /exit)\n", command);
            }
            continue;
        }
        chat_turn(model, session, conversation, interrupts, options, text);
    }
}

}  // namespace mst::cli
