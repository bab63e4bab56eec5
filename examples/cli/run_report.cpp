#include "run_report.h"

#include <cstdio>

#include <fmt/format.h>

#include "budget_options.h"
#include "human.h"

namespace mst::cli {
namespace {

// One phase's share of the session's counters: `to` minus `from`.
struct Phase {
    uint64_t tokens = 0, bytes = 0, hits = 0, misses = 0;
    double seconds = 0;
};

void print_phase(const char *name, const Phase &p) {
    const uint64_t lookups = p.hits + p.misses;
    fmt::print(stderr, "{:<8} {} tokens in {:.3f} s ({:.2f} tok/s); experts {} read ({} per token), "
               "hits {} / misses {} ({:.1f}% hit)\n",
               name, p.tokens, p.seconds, p.seconds > 0 ? double(p.tokens) / p.seconds : 0.0, bytes_str(p.bytes),
               bytes_str(p.tokens ? p.bytes / p.tokens : 0), p.hits, p.misses,
               lookups ? 100.0 * double(p.hits) / double(lookups) : 0.0);
}

const char *stop_reason_str(const RunOutcome &run) {
    if (run.interrupted) return "interrupted (Ctrl-C)";
    static const char *reasons[] = {"none", "end of sequence", "max tokens", "stop string", "callback", "context full"};
    return reasons[run.reason <= MST_STOP_CONTEXT_FULL ? run.reason : 0];
}

}  // namespace

void print_run_report(const ModelHandle &model, const RunOutcome &run, const std::string &cache_policy_name) {
    const mst_model_info info = model.info();
    const mst_session_stats &a = run.after_prompt, &e = run.end;
    const Phase prompt{a.n_prompt_tokens, a.expert_bytes_read, a.expert_cache_hits, a.expert_cache_misses,
                       a.prompt_seconds};
    const Phase decode{e.n_decode_tokens - a.n_decode_tokens, e.expert_bytes_read - a.expert_bytes_read,
                       e.expert_cache_hits - a.expert_cache_hits, e.expert_cache_misses - a.expert_cache_misses,
                       e.decode_seconds - a.decode_seconds};
    fmt::print(stderr, "\n--- moestream: {}, backend {}, storage {}, {} of {} experts per token{}\n", info.architecture,
               info.backend, info.storage, info.experts_per_token, info.n_experts, budget_rules_str(run.budget));
    print_phase("prompt:", prompt);
    if (prompt.tokens < run.prompt_tokens)
        fmt::print(stderr, "         (the prompt has {} tokens; stopped before the rest)\n", run.prompt_tokens);
    print_phase("decode:", decode);
    fmt::print(stderr, "experts: {} read in all, read wait {:.3f} s\n", bytes_str(e.expert_bytes_read),
               e.expert_read_seconds);
    if (e.experts_skipped > 0 || !budget_rules_str(run.budget).empty())
        fmt::print(stderr, "budget:  {} of {} expert slots skipped ({:.1f}%), weight mass skipped {:.4f} in all\n",
                   e.experts_skipped, e.experts_chosen,
                   e.experts_chosen ? 100.0 * double(e.experts_skipped) / double(e.experts_chosen) : 0.0,
                   e.skipped_weight_mass);
    const mst_memory_stats mem = model.memory();
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
    fmt::print(stderr, "stopped: {}\n", stop_reason_str(run));
}

}  // namespace mst::cli
