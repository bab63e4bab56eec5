// `moestream run`: generate text from a prompt, streaming tokens to stdout, then report
// speed, expert streaming and memory on stderr.
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "cli_args.h"
#include "commands.h"
#include "human.h"
#include "model_options.h"
#include "moestream.hpp"

namespace mst::cli {
namespace {

const char *const kRunHelp =
    "usage: moestream run -m PATH -p TEXT [options]\n"
    "Generate text, streaming it to stdout; statistics go to stderr.\n"
    "  -p, --prompt TEXT         the prompt (special tokens like <|im_start|> are recognised)\n"
    "  -n, --max-tokens N        at most N new tokens (default 128)\n"
    "  --temp T                  temperature; 0 = greedy (default 0.8)\n"
    "  --top-k K                 keep the K most likely tokens; 0 = off (default 40)\n"
    "  --top-p P                 nucleus sampling mass; 1 = off (default 0.95)\n"
    "  --min-p P                 drop tokens below P x the top probability; 0 = off (default 0.05)\n"
    "  --repeat-penalty R        penalise recent tokens; 1 = off (default 1)\n"
    "  --repeat-last-n N         how many recent tokens the penalty sees (default 64)\n"
    "  --seed S                  sampling seed (default 24301)\n"
    "  --stop TEXT               stop when TEXT appears (repeatable)\n"
    "  --ignore-eos              keep going past the end-of-sequence token\n"
    "  --ctx N                   context length (default min(model maximum, 4096))\n";

void print_report(const ModelHandle &model, const SessionHandle &session, mst_stop_reason reason,
                  const std::string &cache_policy_name) {
    const mst_model_info info = model.info();
    const mst_session_stats s = session.stats();
    const mst_memory_stats mem = model.memory();
    const uint64_t tokens = s.n_prompt_tokens + s.n_decode_tokens;
    const uint64_t lookups = s.expert_cache_hits + s.expert_cache_misses;
    static const char *reasons[] = {"none", "end of sequence", "max tokens", "stop string", "callback", "context full"};
    fmt::print(stderr, "\n--- moestream: {}, backend {}, storage {}, {} of {} experts per token\n", info.architecture,
               info.backend, info.storage, info.experts_per_token, info.n_experts);
    fmt::print(stderr, "prompt:  {} tokens in {:.3f} s ({:.1f} tok/s)\n", s.n_prompt_tokens, s.prompt_seconds,
               s.prompt_tokens_per_second);
    fmt::print(stderr, "decode:  {} tokens in {:.3f} s ({:.2f} tok/s)\n", s.n_decode_tokens, s.decode_seconds,
               s.decode_tokens_per_second);
    fmt::print(stderr, "experts: {} read ({} per token), cache hits {} / misses {} ({:.1f}% hit), read wait {:.3f} s\n",
               bytes_str(s.expert_bytes_read), bytes_str(tokens ? s.expert_bytes_read / tokens : 0),
               s.expert_cache_hits, s.expert_cache_misses,
               lookups ? 100.0 * double(s.expert_cache_hits) / double(lookups) : 0.0, s.expert_read_seconds);
    fmt::print(stderr, "memory:  resident weights {}, expert cache {} held of {} budget (expert peak {}), "
               "process RSS {} (peak {})\n",
               bytes_str(mem.resident_weight_bytes), bytes_str(mem.expert_cache_bytes),
               bytes_str(mem.expert_cache_budget), bytes_str(mem.expert_cache_peak_bytes),
               bytes_str(mem.process_rss_bytes), bytes_str(mem.process_peak_rss_bytes));
    const mst_cache_stats cache = model.cache_stats();
    if (cache.prefetch_predicted > 0)
        fmt::print(stderr, "prefetch: {} predicted, precision {:.1f}%, recall {:.1f}%, {} read for nothing\n",
                   cache.prefetch_predicted, 100.0 * double(cache.prefetch_used) / double(cache.prefetch_predicted),
                   cache.prefetch_needed ? 100.0 * double(cache.prefetch_used) / double(cache.prefetch_needed) : 0.0,
                   bytes_str(cache.prefetch_wasted_bytes));
    fmt::print(stderr, "cache:   policy {}, {} evictions\n", cache_policy_name, cache.evictions);
    fmt::print(stderr, "stopped: {}\n", reasons[reason <= MST_STOP_CONTEXT_FULL ? reason : 0]);
}

}  // namespace

int cmd_run(const std::vector<std::string> &argv) {
    std::vector<std::string> flags = model_option_flags();
    flags.insert(flags.end(), {"ignore-eos", "help"});
    const Args args(argv, flags, {{"-m", "--model"}, {"-p", "--prompt"}, {"-n", "--max-tokens"}, {"-h", "--help"}});
    if (args.flag("help")) {
        fmt::print("{}{}", kRunHelp, kModelOptionsHelp);
        return 0;
    }
    std::vector<std::string> known = model_option_names();
    known.insert(known.end(), {"prompt", "max-tokens", "temp", "top-k", "top-p", "min-p", "repeat-penalty",
                               "repeat-last-n", "seed", "stop", "ignore-eos", "ctx", "help"});
    args.reject_unknown(known);
    const std::string path = args.require("model");
    const std::string prompt = args.require("prompt");

    std::string backend, storage, cache_policy;
    const ModelHandle model(path, model_params_from(args, backend, storage, cache_policy));
    mst_session_params sp = session_params();
    sp.n_ctx = uint32_t(args.int_or("ctx", 0));
    sp.seed = uint64_t(args.int_or("seed", 24301));
    SessionHandle session(model, sp);

    mst_generate_params gp = generate_params();
    gp.max_tokens = int32_t(args.int_or("max-tokens", 128));
    gp.sampler.temperature = float(args.float_or("temp", gp.sampler.temperature));
    gp.sampler.top_k = int32_t(args.int_or("top-k", gp.sampler.top_k));
    gp.sampler.top_p = float(args.float_or("top-p", gp.sampler.top_p));
    gp.sampler.min_p = float(args.float_or("min-p", gp.sampler.min_p));
    gp.sampler.repetition_penalty = float(args.float_or("repeat-penalty", gp.sampler.repetition_penalty));
    gp.sampler.repetition_last_n = int32_t(args.int_or("repeat-last-n", gp.sampler.repetition_last_n));
    gp.ignore_eos = args.flag("ignore-eos") ? 1 : 0;
    const std::vector<std::string> stops = args.all("stop");
    std::vector<const char *> stop_ptrs;
    for (const auto &s : stops) stop_ptrs.push_back(s.c_str());
    gp.stop = stop_ptrs.data();
    gp.n_stop = stop_ptrs.size();

    const std::vector<int32_t> prompt_ids = model.tokenize(prompt);
    const mst_stop_reason reason = session.generate(prompt_ids, gp, [](int32_t, std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        return false;
    });
    print_report(model, session, reason, cache_policy);
    return 0;
}

}  // namespace mst::cli
