// `moestream run`: generate text from a prompt, streaming tokens to stdout, then report
// speed, expert streaming and memory on stderr. A long prompt is evaluated in batches, with
// a progress line on a terminal; Ctrl-C stops between batches or tokens and still reports.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <span>
#include <string>

#include <fmt/format.h>

#include "budget_options.h"
#include "cli_args.h"
#include "commands.h"
#include "model_options.h"
#include "sampling_options.h"
#include "moestream.hpp"
#include "progress_line.h"
#include "prompt_text.h"
#include "run_report.h"

namespace mst::cli {
namespace {

const char *const kRunHelp =
    "usage: moestream run -m PATH (-p TEXT | -f FILE) [options]\n"
    "Generate text, streaming it to stdout; statistics go to stderr. Ctrl-C stops after the\n"
    "prompt batch or token in progress and still prints the statistics (exit status 130);\n"
    "a second Ctrl-C ends at once. Short options as in llama.cpp.\n"
    "  -p, --prompt TEXT         the prompt, taken as typed (special tokens like <|im_start|> are\n"
    "                            recognised)\n"
    "  -f, --file FILE           read the prompt from FILE, as it is\n"
    "  -e, --escape              in -p TEXT, turn \\n \\t \\r \\\\ \\\" \\' \\xHH into the characters\n"
    "  --verbose-prompt          print the prompt's tokens (id and text) on stderr before generating\n"
    "  -n, --max-tokens N        at most N new tokens, -1 = until the end of sequence or a full\n"
    "                            context (default 128; also --n-predict)\n"
    "  -s, --seed S              sampling seed (default 24301)\n"
    "  --stop TEXT               stop when TEXT appears (repeatable)\n"
    "  --ignore-eos              keep going past the end-of-sequence token\n"
    "  -c, --ctx N               context length (default min(model maximum, 4096); also --ctx-size)\n"
    "  -b, --batch N             prompt tokens per forward pass, 1..65536 (default 512; also\n"
    "                            --batch-size); a terminal shows the prompt's progress per batch\n";

// One line on stderr, redrawn after each prompt batch, only on a terminal.
void draw_prefill_progress(size_t done, size_t total, double seconds) {
    const double rate = seconds > 0 ? double(done) / seconds : 0.0;
    const std::string eta = rate > 0 ? duration_str(double(total - done) / rate) : "-";
    fmt::print(stderr, "\rprompt: {} / {} tokens ({:.0f}%), {:.1f} tok/s, ETA {}   ", done, total,
               100.0 * double(done) / double(total), rate, eta);
    std::fflush(stderr);
}

// As llama.cpp's --verbose-prompt: what the tokenizer made of the prompt, one token a line,
// its bytes with control characters written as escapes so that each token stays on its line.
void print_prompt_tokens(const ModelHandle &model, const std::vector<int32_t> &ids) {
    fmt::print(stderr, "prompt: {} tokens\n", ids.size());
    for (int32_t id : ids) {
        std::string shown;
        for (char c : model.detokenize({id})) {
            const auto byte = static_cast<unsigned char>(c);
            if (c == '\\') shown += "\\\\";
            else if (c == '\n') shown += "\\n";
            else if (c == '\t') shown += "\\t";
            else if (c == '\r') shown += "\\r";
            else if (byte < 0x20) shown += fmt::format("\\x{:02x}", byte);
            else shown += c;
        }
        fmt::print(stderr, "{:>8} -> '{}'\n", id, shown);
    }
}

}  // namespace

int cmd_run(const std::vector<std::string> &argv) {
    const std::optional<Args> parsed = generation_command_args(
        argv, kRunHelp, {"escape", "verbose-prompt"}, {"prompt", "file", "escape", "verbose-prompt", "stop"},
        {{"-p", "--prompt"}, {"-f", "--file"}, {"-e", "--escape"}});
    if (!parsed) return 0;
    const Args &args = *parsed;
    const std::string path = args.require("model");
    const std::string prompt = prompt_from(args);

    // Every option is read before the model loads, so that a mistake costs no loading time.
    std::string backend, storage, cache_policy;
    const mst_model_params mp = model_params_from(args, backend, storage, cache_policy);
    const mst_session_params sp = session_params_from(args);
    mst_generate_params gp = generate_params_from(args, 128);
    const std::vector<std::string> stops = args.all("stop");
    std::vector<const char *> stop_ptrs;
    for (const auto &s : stops) stop_ptrs.push_back(s.c_str());
    gp.stop = stop_ptrs.data();
    gp.n_stop = stop_ptrs.size();
    RunOutcome run;
    run.budget = budget_from(args, mp.experts_per_token);

    const ModelHandle model(path, mp);
    SessionHandle session(model, sp);
    check(mst_session_set_expert_budget(session.get(), &run.budget));

    const std::vector<int32_t> prompt_ids = model.tokenize(prompt);
    run.prompt_tokens = prompt_ids.size();
    if (args.flag("verbose-prompt")) print_prompt_tokens(model, prompt_ids);
    const InterruptGuard interrupt;
    // All but the last batch here, between which progress shows and Ctrl-C is seen; the
    // last goes to generate as its prompt. Batches of one token would count as decoding.
    const size_t batch = std::max<size_t>(sp.n_batch, 2);
    const bool tty = isatty(STDERR_FILENO) != 0;
    size_t done = 0;
    while (prompt_ids.size() - done > batch && !interrupted()) {
        session.eval(std::vector<int32_t>(prompt_ids.begin() + ptrdiff_t(done),
                                          prompt_ids.begin() + ptrdiff_t(done + batch)));
        done += batch;
        if (tty) draw_prefill_progress(done, prompt_ids.size(), session.stats().prompt_seconds);
    }
    bool progress_shown = tty && done > 0;
    bool prompt_done = false;
    if (!interrupted()) {
        const std::vector<int32_t> last(prompt_ids.begin() + ptrdiff_t(done), prompt_ids.end());
        run.reason = session.generate(last, gp, [&](int32_t, std::string_view piece) {
            if (!prompt_done) {  // the first token: the prompt is evaluated, nothing generated yet
                run.after_prompt = session.stats();
                prompt_done = true;
                if (progress_shown) fmt::print(stderr, "\r\033[K");
                progress_shown = false;
            }
            if (interrupted()) return true;  // stop before showing the token Ctrl-C came during
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
            return false;
        });
    }
    if (progress_shown) fmt::print(stderr, "\n");
    run.end = session.stats();
    if (!prompt_done) run.after_prompt = run.end;  // stopped before a first token: all of it was prompt
    run.interrupted = interrupted();
    print_run_report(model, run, cache_policy);
    return run.interrupted ? kInterruptedExit : 0;
}

}  // namespace mst::cli
