// `moestream bench`: time to first token, prefill and decode speed, the per-token stall
// distribution, expert bytes streamed per token, hit rate and read bandwidth, and how
// close decode came to the lower of two ceilings measured in the same run: the I/O
// ceiling (the device's sequential bandwidth / expert bytes read per token) and the
// compute ceiling (decode with every expert it needs already in memory).
#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench_environment.h"
#include "budget_options.h"
#include "cli_args.h"
#include "commands.h"
#include "human.h"
#include "model_options.h"
#include "moestream.hpp"
#include "bench_plot.h"
#include "session/bench_stats.h"
#include "core/process_memory.h"
#include "storage/sequential_bandwidth.h"

namespace mst::cli {
namespace {

const char *const kBenchHelp =
    "usage: moestream bench -m PATH [options] [model options]\n"
    "Measure streaming speed against the device's limits.\n"
    "  --prompt-tokens N         prompt length, 1..1000000 (default 64)\n"
    "  --gen-tokens N            decode steps timed, 1..1000000 (default 32)\n"
    "  --repeat N                runs of each setting, each on the model loaded afresh, 1..1000\n"
    "                            (default 3); TTFT, prefill and decode speed are given as min /\n"
    "                            median / max, the other columns over all runs\n"
    "  --cold                    start every setting from an empty page cache (the model's files\n"
    "                            are dropped with posix_fadvise; reads then come from the device)\n"
    "  --no-ceilings             skip measuring the device's bandwidth and the compute ceiling (no\n"
    "                            ceiling or roofline columns)\n"
    "  --sampler whole|default|greedy\n"
    "                            how each next token is chosen: whole = the whole vocabulary at\n"
    "                            temperature 1 (default; a chat's variety of experts), default = the\n"
    "                            library's default sampler (temperature 0.8, top-k 40, top-p 0.95,\n"
    "                            min-p 0.05), greedy = the highest logit\n"
    "  --sweep-experts K1,...    settings: experts per token (0 = the model's own)\n"
    "  --sweep-storage T1,...    settings: storage tiers\n"
    "  --sweep-policy P1,...     settings: cache policies\n"
    "  --sweep-cache-mb M1,...   settings: expert cache budgets\n"
    "  --json FILE               write every measurement as JSON\n"
    "  --plot FILE.svg|FILE.png  plot decode tok/s against the expert cache budget (one line per\n"
    "                            other swept setting) with gnuplot, which must be on PATH; FILE.dat\n"
    "                            and FILE.gp are written beside it (re-make: gnuplot FILE.gp)\n";

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<std::string> split(const std::string &text) {
    std::vector<std::string> out;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

std::vector<std::string> model_files(const std::string &path) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(path)) return {path};
    std::vector<std::string> files;
    for (const auto &entry : fs::directory_iterator(path))
        if (entry.path().extension() == ".safetensors") files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());
    return files;
}

struct Setting {
    std::string storage, policy;
    int32_t experts_per_token = 0;
    uint64_t cache_bytes = 0;
};

struct Run {
    double load_s = 0, ttft_s = 0, prefill_tps = 0, decode_tps = 0;
    std::vector<double> latencies;
    uint64_t decode_bytes = 0, hits = 0, misses = 0;
    uint64_t prefetch_predicted = 0, prefetch_used = 0;  // experts predicted, and of those chosen
    // The GPU expert cache's decode (mst_cache_stats gpu_*; 0 without one): parts found and
    // copied, bytes over the bus and how many of them without a host memcpy, guesses copied
    // ahead and what became of them.
    uint64_t gpu_hits = 0, gpu_misses = 0, gpu_bytes = 0, gpu_direct = 0, gpu_prefetched = 0, gpu_prefetch_used = 0,
             gpu_prefetch_wasted = 0;
    double read_s = 0;
    // CPU seconds of this thread inside the decode steps' eval (not sampling): a device
    // backend's host work per token, which its waits leave out; on the CPU backend, this
    // thread's share of the compute.
    double decode_eval_cpu_s = 0;
    // Of that, the first decode step's: a device backend compiles the pipelines of the
    // single-token kernels there, which the later steps find made.
    double first_decode_eval_cpu_s = 0;
    // The first decode step's wall time in eval, and the backend's part of it: pipelines
    // compiled (and their host seconds), submissions recorded afresh and replayed.
    double first_eval_s = 0, first_pipeline_create_s = 0;
    uint64_t first_pipelines_created = 0, first_recorded = 0, first_replayed = 0;
    // The backend over the decode (mst_backend_stats; 0 on the CPU): submissions replayed
    // and recorded afresh, pipelines compiled and their host seconds.
    uint64_t replayed = 0, recorded = 0, pipelines_created = 0;
    double pipeline_create_s = 0;
    // Where the wall time of the later decode tokens went (the first is apart, above):
    // inside Session::eval, inside sampling (and its CPU), and the loop's total, whose rest
    // is neither. decode_tps counts eval alone; a generation loop also pays the rest.
    double later_eval_s = 0, later_sample_s = 0, later_sample_cpu_s = 0, later_total_s = 0;
    double first_sample_s = 0;
    std::vector<int32_t> tokens;  // the decoded sequence, replayed for the compute ceiling
    uint64_t expert_bytes_per_token = 0, resident_bytes = 0;  // from the model's info
    std::string storage;          // the tier that ran ("auto" resolved)
    int32_t experts_per_token = 0;  // the top-k that ran (0 resolved to the model's own)
    uint64_t cache_bytes = 0;       // the expert cache budget that ran (the automatic one resolved)
};

std::vector<int32_t> synthetic_prompt(int32_t n, int32_t vocab) {
    std::vector<int32_t> ids;
    for (int32_t i = 0; i < n; ++i) ids.push_back(int32_t((uint64_t(i) * 7919u + 13u) % uint64_t(vocab)));
    return ids;
}

// A setting's name without its cache budget, as it ran: the plot's series.
std::string series_label(const Run &r, const Setting &s, const mst_expert_budget &budget) {
    return fmt::format("k={} {} {}{}", r.experts_per_token, r.storage, s.policy, budget_rules_str(budget));
}

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// The sampler `--sampler NAME` names.
mst_sampler_params bench_sampler(const std::string &name) {
    mst_sampler_params sampling = sampler_params();
    if (name == "default") return sampling;
    if (name == "greedy") {
        sampling.temperature = 0.0f;
        return sampling;
    }
    if (name != "whole")
        throw UsageError("--sampler must be whole, default or greedy, got '" + name + "'");
    // The whole distribution at temperature 1, as a chat's variety of tokens: greedy
    // decoding of a random-weight model repeats one token, whose experts then all hit in
    // the cache and flatter every streaming figure.
    sampling.temperature = 1.0f;
    sampling.top_k = 0;
    sampling.top_p = 1.0f;
    sampling.min_p = 0.0f;
    return sampling;
}

Run run_setting(const std::string &path, mst_model_params params, const mst_expert_budget &budget,
                const mst_sampler_params &sampling, int32_t prompt_tokens, int32_t gen_tokens) {
    Run r;
    auto t0 = Clock::now();
    const ModelHandle model(path, params);
    r.load_s = since(t0);
    const mst_model_info info = model.info();
    r.expert_bytes_per_token = info.expert_bytes_per_token;
    r.resident_bytes = info.resident_bytes;
    r.storage = info.storage;
    r.experts_per_token = info.experts_per_token;
    r.cache_bytes = info.expert_cache_bytes;
    mst_session_params sp = session_params();
    sp.n_ctx = uint32_t(prompt_tokens + gen_tokens + 1);
    SessionHandle session(model, sp);
    check(mst_session_set_expert_budget(session.get(), &budget));
    const std::vector<int32_t> prompt = synthetic_prompt(prompt_tokens, model.info().n_vocab);
    t0 = Clock::now();
    session.eval(prompt);
    int32_t token = session.sample(sampling);
    r.ttft_s = since(t0);
    const mst_session_stats after_prompt = session.stats();
    const mst_cache_stats cache_after_prompt = model.cache_stats();
    const mst_backend_stats backend_after_prompt = model.backend_stats();
    r.prefill_tps = after_prompt.prompt_tokens_per_second;
    for (int32_t i = 0; i < gen_tokens; ++i) {
        r.tokens.push_back(token);
        t0 = Clock::now();
        const double cpu0 = thread_cpu_seconds();
        session.eval({token});
        const double cpu = thread_cpu_seconds() - cpu0;
        const auto sample_start = Clock::now();
        const double eval_s = std::chrono::duration<double>(sample_start - t0).count();
        r.decode_eval_cpu_s += cpu;
        if (i == 0) r.first_decode_eval_cpu_s = cpu;
        const double sample_cpu0 = thread_cpu_seconds();
        token = session.sample(sampling);
        const double sample_cpu = thread_cpu_seconds() - sample_cpu0;
        const double sample_s = since(sample_start);
        r.latencies.push_back(since(t0));
        if (i == 0) {
            const mst_backend_stats b = model.backend_stats();
            r.first_eval_s = eval_s;
            r.first_sample_s = sample_s;
            r.first_pipelines_created = b.pipelines_created - backend_after_prompt.pipelines_created;
            r.first_pipeline_create_s = b.pipeline_create_seconds - backend_after_prompt.pipeline_create_seconds;
            r.first_recorded = b.recorded - backend_after_prompt.recorded;
            r.first_replayed = b.replayed - backend_after_prompt.replayed;
            continue;
        }
        r.later_eval_s += eval_s;
        r.later_sample_s += sample_s;
        r.later_sample_cpu_s += sample_cpu;
        r.later_total_s += r.latencies.back();
    }
    const mst_session_stats s = session.stats();
    r.decode_tps = s.decode_tokens_per_second;
    // Bytes the device delivered: experts used, and those read ahead but not chosen.
    const mst_cache_stats cache = model.cache_stats();
    const mst_backend_stats backend = model.backend_stats();
    r.replayed = backend.replayed - backend_after_prompt.replayed;
    r.recorded = backend.recorded - backend_after_prompt.recorded;
    r.pipelines_created = backend.pipelines_created - backend_after_prompt.pipelines_created;
    r.pipeline_create_s = backend.pipeline_create_seconds - backend_after_prompt.pipeline_create_seconds;
    r.decode_bytes = s.expert_bytes_read - after_prompt.expert_bytes_read + cache.prefetch_wasted_bytes -
                     cache_after_prompt.prefetch_wasted_bytes;
    r.prefetch_predicted = cache.prefetch_predicted - cache_after_prompt.prefetch_predicted;
    r.prefetch_used = cache.prefetch_used - cache_after_prompt.prefetch_used;
    r.gpu_hits = cache.gpu_hits - cache_after_prompt.gpu_hits;
    r.gpu_misses = cache.gpu_misses - cache_after_prompt.gpu_misses;
    r.gpu_bytes = cache.gpu_bytes_uploaded - cache_after_prompt.gpu_bytes_uploaded;
    r.gpu_direct = cache.gpu_direct_bytes - cache_after_prompt.gpu_direct_bytes;
    r.gpu_prefetched = cache.gpu_prefetched - cache_after_prompt.gpu_prefetched;
    r.gpu_prefetch_used = cache.gpu_prefetch_used - cache_after_prompt.gpu_prefetch_used;
    r.gpu_prefetch_wasted = cache.gpu_prefetch_wasted - cache_after_prompt.gpu_prefetch_wasted;
    r.hits = s.expert_cache_hits - after_prompt.expert_cache_hits;
    r.misses = s.expert_cache_misses - after_prompt.expert_cache_misses;
    r.read_s = s.expert_read_seconds - after_prompt.expert_read_seconds;
    return r;
}

// Decode tok/s with the experts in memory: decoded tokens replayed on a model whose cache
// holds every expert they touch, every pass after the first timed. The replay starts from a
// one-token prompt (a long prompt would touch every expert of every layer) and replays as
// many of the decoded tokens as the memory left, under a cgroup limit too, can hold the
// experts of, so that measuring the ceiling never pushes the process out of memory.
// Misses left in the timed pass mean the cache could not hold what the tokens touched.
struct Ceiling {
    double tps = 0;
    uint64_t misses = 0;
    size_t tokens = 0;  // decoded tokens replayed (0: not even one token's experts fit)
    size_t passes = 0;  // timed replays of them
};

Ceiling compute_ceiling(const std::string &path, mst_model_params params, const mst_expert_budget &budget,
                        const Run &run) {
    constexpr uint64_t kSlack = 512ull << 20;  // KV cache, activations, allocator
    const uint64_t per_token = std::max<uint64_t>(run.expert_bytes_per_token, 1);
#ifdef __GLIBC__
    malloc_trim(0);  // hand the measured run's freed expert cache back, or it counts as in use
#endif
    const double headroom = 0.8 * double(memory_headroom());
    const double for_experts = headroom - double(run.resident_bytes) - double(kSlack);
    // The prompt token's experts count as one more token's worth.
    const size_t fit = for_experts > 0 ? size_t(for_experts / double(per_token)) : 0;
    Ceiling c;
    c.tokens = std::min(run.tokens.size(), fit > 0 ? fit - 1 : 0);
    if (c.tokens == 0) return c;

    params.expert_cache_bytes = uint64_t(c.tokens + 1) * per_token;
    params.cache_policy = "lru";  // whatever the measured setting used: "none" would hold nothing
    params.prefetch = 0;
    const ModelHandle model(path, params);
    mst_session_params sp = session_params();
    sp.n_ctx = uint32_t(c.tokens + 2);
    const std::vector<int32_t> prompt = synthetic_prompt(1, model.info().n_vocab);
    // One untimed pass fills the cache; the timed passes then add up to at least
    // kTimedTokens tokens, so that a ceiling of one token is not one noisy sample.
    constexpr size_t kTimedTokens = 8;
    const size_t timed_passes = (kTimedTokens + c.tokens - 1) / c.tokens;
    c.passes = timed_passes;
    double seconds = 0;
    for (size_t pass = 0; pass <= timed_passes; ++pass) {
        SessionHandle session(model, sp);
        check(mst_session_set_expert_budget(session.get(), &budget));
        session.eval(prompt);
        const mst_session_stats before = session.stats();
        for (size_t i = 0; i < c.tokens; ++i) session.eval({run.tokens[i]});
        const mst_session_stats after = session.stats();
        if (pass == 0) continue;
        seconds += after.decode_seconds - before.decode_seconds;
        c.misses += after.expert_cache_misses - before.expert_cache_misses;
    }
    c.tps = seconds > 0 ? double(c.tokens * timed_passes) / seconds : 0.0;
    return c;
}

// The runs of one setting: speeds as min / median / max, the rest pooled over all runs.
struct Summary {
    std::vector<double> ttft, prefill, decode, latencies;
    std::vector<double> eval_cpu_ms;  // per run: the evaluating thread's CPU ms per decode token
    // Per run: the first decode token's eval CPU ms, and the later tokens' mean.
    std::vector<double> first_eval_cpu_ms, later_eval_cpu_ms;
    // Per run, ms per later decode token: eval's wall time, sampling's wall and CPU time,
    // the rest of the loop; and tokens per second counting all of it.
    std::vector<double> later_eval_ms, later_sample_ms, later_sample_cpu_ms, later_other_ms, later_loop_tps;
    std::vector<double> first_sample_ms, first_eval_ms, first_pipeline_ms;
    uint64_t first_pipelines = 0, first_recorded = 0, first_replayed = 0;
    uint64_t replayed = 0, recorded = 0, pipelines_created = 0;
    double pipeline_create_s = 0;
    uint64_t bytes = 0, hits = 0, misses = 0, prefetch_predicted = 0, prefetch_used = 0;
    uint64_t gpu_hits = 0, gpu_misses = 0, gpu_bytes = 0, gpu_direct = 0, gpu_prefetched = 0, gpu_prefetch_used = 0,
             gpu_prefetch_wasted = 0;
    double read_s = 0;
    size_t tokens = 0;  // decoded, in all runs

    void add(const Run &r) {
        ttft.push_back(r.ttft_s);
        prefill.push_back(r.prefill_tps);
        decode.push_back(r.decode_tps);
        if (!r.latencies.empty()) {
            eval_cpu_ms.push_back(1e3 * r.decode_eval_cpu_s / double(r.latencies.size()));
            first_eval_cpu_ms.push_back(1e3 * r.first_decode_eval_cpu_s);
        }
        if (!r.latencies.empty()) {
            first_sample_ms.push_back(1e3 * r.first_sample_s);
            first_eval_ms.push_back(1e3 * r.first_eval_s);
            first_pipeline_ms.push_back(1e3 * r.first_pipeline_create_s);
            first_pipelines += r.first_pipelines_created;
            first_recorded += r.first_recorded;
            first_replayed += r.first_replayed;
        }
        if (r.latencies.size() > 1) {
            const double later = double(r.latencies.size() - 1);
            later_eval_cpu_ms.push_back(1e3 * (r.decode_eval_cpu_s - r.first_decode_eval_cpu_s) / later);
            later_eval_ms.push_back(1e3 * r.later_eval_s / later);
            later_sample_ms.push_back(1e3 * r.later_sample_s / later);
            later_sample_cpu_ms.push_back(1e3 * r.later_sample_cpu_s / later);
            later_other_ms.push_back(1e3 * (r.later_total_s - r.later_eval_s - r.later_sample_s) / later);
            later_loop_tps.push_back(r.later_total_s > 0 ? later / r.later_total_s : 0.0);
        }
        replayed += r.replayed;
        recorded += r.recorded;
        pipelines_created += r.pipelines_created;
        pipeline_create_s += r.pipeline_create_s;
        latencies.insert(latencies.end(), r.latencies.begin(), r.latencies.end());
        bytes += r.decode_bytes;
        hits += r.hits;
        misses += r.misses;
        prefetch_predicted += r.prefetch_predicted;
        prefetch_used += r.prefetch_used;
        gpu_hits += r.gpu_hits;
        gpu_misses += r.gpu_misses;
        gpu_bytes += r.gpu_bytes;
        gpu_direct += r.gpu_direct;
        gpu_prefetched += r.gpu_prefetched;
        gpu_prefetch_used += r.gpu_prefetch_used;
        gpu_prefetch_wasted += r.gpu_prefetch_wasted;
        read_s += r.read_s;
        tokens += r.latencies.size();
    }
};

struct Spread {
    double min = 0, median = 0, max = 0;
};

Spread spread_of(const std::vector<double> &v) { return {percentile(v, 0.0), percentile(v, 0.5), percentile(v, 1.0)}; }

nlohmann::json spread_json(const Spread &s) { return {{"min", s.min}, {"median", s.median}, {"max", s.max}}; }

// A ceiling or roofline cell: "-" when it was not measured or there is none.
std::string cell(double value, const char *format) {
    return value > 0 && std::isfinite(value) ? fmt::format(fmt::runtime(format), value) : std::string("-");
}

// Why decode may beat the lower ceiling: each ceiling is an estimate made apart from the run.
std::string above_roofline_note(const std::string &label, double roofline, double io_ceiling, double cpu_ceiling,
                                double read_bps, double probe_bps) {
    if (cpu_ceiling > 0 && cpu_ceiling < io_ceiling)
        return fmt::format("{}: decode reached {:.0f}% of the compute ceiling: that ceiling is a separate replay of "
                           "the decoded tokens, and its timing varies from run to run as this one does",
                           label, 100.0 * roofline);
    return fmt::format("{}: decode reached {:.0f}% of the I/O ceiling: the ceiling assumes every expert byte comes "
                       "from the device at the probe's {:.0f} MB/s (8 MiB O_DIRECT reads, 16 in flight), but decode "
                       "got its experts at {:.0f} MB/s: the page cache served some (buffered tiers), or the tier's "
                       "parallel reads outran the probe",
                       label, 100.0 * roofline, probe_bps / 1e6, read_bps / 1e6);
}

}  // namespace

int cmd_bench(const std::vector<std::string> &argv) {
    std::vector<std::string> flags = model_option_flags();
    flags.insert(flags.end(), {"cold", "no-ceilings", "help"});
    const Args args(argv, flags, model_option_aliases());
    if (args.flag("help")) {
        fmt::print("{}{}model options:\n{}", kBenchHelp, kBudgetOptionsHelp, kModelOptionsHelp);
        return 0;
    }
    std::vector<std::string> known = model_option_names();
    known.insert(known.end(), {"prompt-tokens", "gen-tokens", "repeat", "cold", "no-ceilings", "sampler", "sweep-experts",
                               "sweep-storage", "sweep-policy", "sweep-cache-mb", "json", "plot", "help"});
    for (const std::string &name : budget_option_names()) known.push_back(name);
    args.reject_unknown(known);
    args.reject_positional();
    const std::string path = args.require("model");
    const int32_t prompt_tokens = int32_t(args.int_in("prompt-tokens", 64, 1, 1000000));
    const int32_t gen_tokens = int32_t(args.int_in("gen-tokens", 32, 1, 1000000));
    const int64_t repeat = args.int_in("repeat", 3, 1, 1000);
    const bool measure_ceilings = !args.flag("no-ceilings");
    const std::string sampler_name = args.get_or("sampler", "whole");
    const mst_sampler_params sampling = bench_sampler(sampler_name);

    std::string backend, storage, cache_policy;
    const mst_model_params base = model_params_from(args, backend, storage, cache_policy);
    const mst_expert_budget budget = budget_from(args, 0);
    std::vector<Setting> settings{{storage, cache_policy, base.experts_per_token, base.expert_cache_bytes}};
    // Each swept option multiplies the settings by its values.
    auto vary = [&](const auto &values, auto apply) {
        if (values.empty()) return;
        std::vector<Setting> next;
        for (const Setting &s : settings)
            for (const auto &v : values) next.push_back(apply(s, v));
        settings = std::move(next);
    };
    constexpr int64_t kMaxMib = int64_t(std::numeric_limits<uint64_t>::max() >> 20);
    vary(args.int_list("sweep-experts", 0, std::numeric_limits<int32_t>::max()),
         [](Setting s, int64_t k) { s.experts_per_token = int32_t(k); return s; });
    vary(split(args.get_or("sweep-storage", "")), [](Setting s, const std::string &v) { s.storage = v; return s; });
    vary(split(args.get_or("sweep-policy", "")), [](Setting s, const std::string &v) { s.policy = v; return s; });
    vary(args.int_list("sweep-cache-mb", 0, kMaxMib),
         [](Setting s, int64_t mib) { s.cache_bytes = uint64_t(mib) << 20; return s; });

    // Fail before measuring anything when the plot cannot be made.
    std::string gnuplot;
    if (args.get("plot")) {
        plot_terminal(*args.get("plot"));
        gnuplot = find_gnuplot();
    }

    const BenchEnvironment env = bench_environment(base.n_threads);
    fmt::print("{}\n", environment_line(env));
    const std::vector<std::string> files = model_files(path);
    SequentialBandwidth seq;
    if (measure_ceilings) {
        seq = measure_sequential_bandwidth(files, 2ull << 30);
        if (seq.bytes_per_second > 0)
            fmt::print("device sequential read: {:.0f} MB/s ({} in 8 MiB reads, 16 in flight, {})\n",
                       seq.bytes_per_second / 1e6, bytes_str(seq.bytes_read),
                       seq.direct ? "O_DIRECT" : "buffered, cache dropped; the filesystem refused O_DIRECT");
        else
            fmt::print("device sequential read: not measured (the model's files are smaller than one 8 MiB read); "
                       "no I/O ceiling\n");
    }

    fmt::print("{} run(s) per setting: TTFT, prefill and decode speed are medians (min / median / max below), the "
               "rest over all runs; next tokens chosen by the {} sampler\n",
               repeat, sampler_name);
    fmt::print("{:<34} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>11} {:>6} {:>9} {:>9} {:>9} {:>8}\n", "setting",
               "TTFT s", "pre t/s", "dec t/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "bytes/tok", "hit%",
               "read MB/s", "io ceil", "cpu ceil", "roofline");
    nlohmann::json results = nlohmann::json::array();
    std::vector<std::string> notes, spreads;
    std::vector<PlotPoint> plot_points;
    for (const Setting &s : settings) {
        mst_model_params p = base;
        p.storage = s.storage.c_str();
        p.cache_policy = s.policy.c_str();
        p.experts_per_token = s.experts_per_token;
        p.expert_cache_bytes = s.cache_bytes;
        Summary sum;
        Run first;
        for (int64_t i = 0; i < repeat; ++i) {
            if (args.flag("cold")) evict_from_page_cache(files);
            Run r = run_setting(path, p, budget, sampling, prompt_tokens, gen_tokens);
            sum.add(r);
            if (i == 0) first = std::move(r);
        }
        // Named as it ran: the tier "auto" chose, the top-k and the cache budget in effect.
        const std::string label = fmt::format("k={} {} {} {}{}", first.experts_per_token, first.storage, s.policy,
                                              bytes_str(first.cache_bytes), budget_rules_str(budget));
        const Spread ttft = spread_of(sum.ttft), prefill = spread_of(sum.prefill), decode = spread_of(sum.decode);
        const double bytes_per_token = double(sum.bytes) / double(sum.tokens);
        const double io_ceiling = measure_ceilings ? io_ceiling_tps(seq.bytes_per_second, bytes_per_token) : 0.0;
        Ceiling ceiling;
        if (measure_ceilings) ceiling = compute_ceiling(path, p, budget, first);
        const double cpu_ceiling = ceiling.tps;
        const double roofline = measure_ceilings ? roofline_fraction(decode.median, io_ceiling, cpu_ceiling) : 0.0;
        const double hits = hit_rate(sum.hits, sum.misses);
        // Over the decode wall time: with prefetch, reads overlap compute and the time spent
        // waiting for them says little about the rate the device delivered.
        double decode_seconds = 0;
        for (double l : sum.latencies) decode_seconds += l;
        const double read_bps = per_second(double(sum.bytes), decode_seconds);
        const double p50 = percentile(sum.latencies, 0.5), p90 = percentile(sum.latencies, 0.9),
                     p99 = percentile(sum.latencies, 0.99), pmax = percentile(sum.latencies, 1.0);
        fmt::print("{:<34} {:>7.3f} {:>8.1f} {:>8.2f} {:>8.1f} {:>8.1f} {:>8.1f} {:>8.1f} {:>11} {:>5.1f}% {:>9.0f} "
                   "{:>9} {:>9} {:>8}\n",
                   label, ttft.median, prefill.median, decode.median, 1e3 * p50, 1e3 * p90, 1e3 * p99, 1e3 * pmax,
                   bytes_str(uint64_t(bytes_per_token)), 100.0 * hits, read_bps / 1e6, cell(io_ceiling, "{:.2f}"),
                   cell(cpu_ceiling, "{:.2f}"), cell(100.0 * roofline, "{:.1f}%"));
        std::fflush(stdout);
        spreads.push_back(fmt::format("{:<34} {:>7.3f} {:>7.3f} {:>7.3f}   {:>8.1f} {:>8.1f} {:>8.1f}   "
                                      "{:>8.2f} {:>8.2f} {:>8.2f}",
                                      label, ttft.min, ttft.median, ttft.max, prefill.min, prefill.median, prefill.max,
                                      decode.min, decode.median, decode.max));
        // Notes wait until the table is complete, so that a sweep prints one table.
        if (measure_ceilings && ceiling.tokens == 0)
            notes.push_back(fmt::format("{}: no compute ceiling: the memory left cannot hold one token's experts",
                                        label));
        else if (measure_ceilings && ceiling.tokens < first.tokens.size())
            notes.push_back(fmt::format("{}: the compute ceiling replayed {} of the {} decoded tokens (as many as "
                                        "the memory left holds the experts of), {} times",
                                        label, ceiling.tokens, first.tokens.size(), ceiling.passes));
        if (roofline > 1.0)
            notes.push_back(
                above_roofline_note(label, roofline, io_ceiling, cpu_ceiling, read_bps, seq.bytes_per_second));
        if (measure_ceilings && !std::isfinite(io_ceiling))
            notes.push_back(fmt::format("{}: no I/O ceiling: decode read no expert from storage", label));
        const double wait_per_token = sum.read_s / double(sum.tokens);
        if (sum.prefetch_predicted)
            notes.push_back(fmt::format("{}: prefetch predicted {} experts, {} of them then chosen ({:.0f}%); decode "
                                        "waited {:.0f} ms per token for reads",
                                        label, sum.prefetch_predicted, sum.prefetch_used,
                                        100.0 * double(sum.prefetch_used) / double(sum.prefetch_predicted),
                                        1e3 * wait_per_token));
        else
            notes.push_back(
                fmt::format("{}: decode waited {:.0f} ms per token for reads", label, 1e3 * wait_per_token));
        if (!sum.eval_cpu_ms.empty()) {
            const Spread cpu = spread_of(sum.eval_cpu_ms);
            notes.push_back(fmt::format("{}: CPU of the evaluating thread per decode token {:.3f} / {:.3f} / {:.3f} ms "
                                        "(min / median / max over runs; a GPU backend's host work)",
                                        label, cpu.min, cpu.median, cpu.max));
            const Spread first_cpu = spread_of(sum.first_eval_cpu_ms);
            std::string later;
            if (!sum.later_eval_cpu_ms.empty()) {
                const Spread l = spread_of(sum.later_eval_cpu_ms);
                later = fmt::format(", the later ones' {:.3f} / {:.3f} / {:.3f} ms", l.min, l.median, l.max);
            }
            notes.push_back(fmt::format("{}: of that, the first decode token's {:.3f} / {:.3f} / {:.3f} ms{}",
                                        label, first_cpu.min, first_cpu.median, first_cpu.max, later));
            const Spread first_wall = spread_of(sum.first_eval_ms), first_compile = spread_of(sum.first_pipeline_ms);
            notes.push_back(fmt::format("{}: the first decode token's eval took {:.3f} / {:.3f} / {:.3f} ms of wall "
                                        "time; in it {} pipelines compiled in {:.3f} / {:.3f} / {:.3f} ms, {} "
                                        "submissions recorded afresh and {} replayed (all runs)",
                                        label, first_wall.min, first_wall.median, first_wall.max, sum.first_pipelines,
                                        first_compile.min, first_compile.median, first_compile.max,
                                        sum.first_recorded, sum.first_replayed));
        }
        if (!sum.later_eval_ms.empty()) {
            const Spread e = spread_of(sum.later_eval_ms), sw = spread_of(sum.later_sample_ms),
                         sc = spread_of(sum.later_sample_cpu_ms), o = spread_of(sum.later_other_ms),
                         tps = spread_of(sum.later_loop_tps), first_sample = spread_of(sum.first_sample_ms);
            notes.push_back(fmt::format(
                "{}: a later decode token's wall time (min / median / max over runs): eval {:.3f} / {:.3f} / {:.3f} ms, "
                "sampling {:.3f} / {:.3f} / {:.3f} ms ({:.3f} / {:.3f} / {:.3f} ms of CPU; the first token's "
                "{:.3f} / {:.3f} / {:.3f} ms), other {:.3f} / {:.3f} / {:.3f} ms; eval, sampling and other together "
                "{:.2f} / {:.2f} / {:.2f} tok/s (dec t/s counts eval alone)",
                label, e.min, e.median, e.max, sw.min, sw.median, sw.max, sc.min, sc.median, sc.max,
                first_sample.min, first_sample.median, first_sample.max, o.min, o.median, o.max, tps.min, tps.median, tps.max));
        }
        if (sum.replayed + sum.recorded + sum.pipelines_created)
            notes.push_back(fmt::format("{}: decode submissions {} replayed, {} recorded afresh; {} pipelines "
                                        "compiled during decode ({:.1f} ms of host time, all runs)",
                                        label, sum.replayed, sum.recorded, sum.pipelines_created,
                                        1e3 * sum.pipeline_create_s));
        if (sum.gpu_hits + sum.gpu_misses)
            notes.push_back(fmt::format(
                "{}: GPU expert cache: {:.0f}% of part lookups hit; {:.1f} MB a token to the device, {:.0f}% of it "
                "copied from imported host memory; {} parts copied ahead on a guess, {} then used, {} evicted unused",
                label, 100.0 * double(sum.gpu_hits) / double(sum.gpu_hits + sum.gpu_misses),
                1e-6 * double(sum.gpu_bytes) / double(std::max<size_t>(sum.tokens, 1)),
                sum.gpu_bytes ? 100.0 * double(sum.gpu_direct) / double(sum.gpu_bytes) : 0.0, sum.gpu_prefetched,
                sum.gpu_prefetch_used, sum.gpu_prefetch_wasted));
        if (ceiling.misses)
            notes.push_back(fmt::format("{}: the compute ceiling had {} cache misses (the cache could not hold "
                                        "every expert)",
                                        label, ceiling.misses));
        plot_points.push_back({series_label(first, s, budget), double(first.cache_bytes) / double(1 << 20), decode.median});
        nlohmann::json result = {
            {"setting", label}, {"storage", first.storage}, {"storage_requested", s.storage},
            {"cache_policy", s.policy}, {"experts_per_token", first.experts_per_token},
            {"experts_per_token_requested", s.experts_per_token}, {"min_weight", budget.min_weight},
            {"mass", budget.mass}, {"cache_skip_below", budget.cache_skip_below}, {"cache_bytes", first.cache_bytes},
            {"runs", repeat}, {"ttft_seconds", spread_json(ttft)}, {"prefill_tps", spread_json(prefill)},
            {"decode_tps", spread_json(decode)}, {"ttft_seconds_runs", sum.ttft}, {"prefill_tps_runs", sum.prefill},
            {"decode_tps_runs", sum.decode}, {"load_seconds_first_run", first.load_s}, {"latency_p50", p50},
            {"latency_p90", p90}, {"latency_p99", p99}, {"latency_max", pmax},
            {"expert_bytes_per_token", bytes_per_token}, {"hit_rate", hits}, {"read_bytes_per_second", read_bps},
            {"read_wait_seconds_per_token", wait_per_token}, {"decode_eval_cpu_ms_per_token_runs", sum.eval_cpu_ms},
            {"first_decode_eval_cpu_ms_runs", sum.first_eval_cpu_ms},
            {"later_decode_eval_cpu_ms_per_token_runs", sum.later_eval_cpu_ms},
            {"later_decode_eval_ms_per_token_runs", sum.later_eval_ms},
            {"later_decode_sample_ms_per_token_runs", sum.later_sample_ms},
            {"later_decode_sample_cpu_ms_per_token_runs", sum.later_sample_cpu_ms},
            {"later_decode_other_ms_per_token_runs", sum.later_other_ms},
            {"later_decode_loop_tps_runs", sum.later_loop_tps},
            {"first_decode_sample_ms_runs", sum.first_sample_ms},
            {"first_decode_eval_ms_runs", sum.first_eval_ms},
            {"first_decode_pipeline_create_ms_runs", sum.first_pipeline_ms},
            {"first_decode_pipelines_created", sum.first_pipelines},
            {"first_decode_submissions_recorded", sum.first_recorded},
            {"first_decode_submissions_replayed", sum.first_replayed},
            {"decode_submissions_replayed", sum.replayed}, {"decode_submissions_recorded", sum.recorded},
            {"decode_pipelines_created", sum.pipelines_created},
            {"decode_pipeline_create_seconds", sum.pipeline_create_s},
            {"prefetch_predicted", sum.prefetch_predicted},
            {"prefetch_used", sum.prefetch_used}, {"gpu_hits", sum.gpu_hits}, {"gpu_misses", sum.gpu_misses},
            {"gpu_bytes_uploaded", sum.gpu_bytes}, {"gpu_direct_bytes", sum.gpu_direct},
            {"gpu_prefetched", sum.gpu_prefetched}, {"gpu_prefetch_used", sum.gpu_prefetch_used},
            {"gpu_prefetch_wasted", sum.gpu_prefetch_wasted}};
        if (measure_ceilings) {
            // No ceiling (a decode that read nothing) is null, not infinity, which JSON lacks.
            result["io_ceiling_tps"] = std::isfinite(io_ceiling) ? nlohmann::json(io_ceiling) : nlohmann::json();
            result["compute_ceiling_tps"] = cpu_ceiling;
            result["compute_ceiling_tokens"] = ceiling.tokens;
            result["compute_ceiling_passes"] = ceiling.passes;
            result["roofline_fraction"] = roofline;
        }
        results.push_back(std::move(result));
    }
    fmt::print("\nspread over {} run(s): min / median / max\n{:<34} {:^23}   {:^26}   {:^26}\n", repeat, "setting",
               "TTFT s", "prefill tok/s", "decode tok/s");
    for (const std::string &line : spreads) fmt::print("{}\n", line);
    for (const std::string &note : notes) fmt::print("  {}\n", note);
    if (auto plot_path = args.get("plot")) {
        write_plot(*plot_path, plot_points, gnuplot);
        fmt::print("plot: {} (data and gnuplot script beside it)\n", *plot_path);
    }
    if (auto json_path = args.get("json")) {
        nlohmann::json doc = {{"model", path},
                              {"environment", environment_json(env)},
                              {"cold", args.flag("cold")},
                              {"prompt_tokens", prompt_tokens},
                              {"gen_tokens", gen_tokens},
                              {"sampler", sampler_name},
                              {"repeat", repeat},
                              {"results", results}};
        if (measure_ceilings)
            doc["disk_probe"] = {{"bytes_per_second", seq.bytes_per_second}, {"bytes_read", seq.bytes_read},
                                 {"direct", seq.direct}, {"read_bytes", 8 << 20}, {"reads_in_flight", 16},
                                 {"files", files}};
        std::ofstream out(*json_path);
        out << doc.dump(2);
        if (!out) throw UsageError("cannot write --json file '" + *json_path + "'");
    }
    return 0;
}

}  // namespace mst::cli
