// `moestream bench`: time to first token, prefill and decode speed, the per-token stall
// distribution, expert bytes streamed per token, hit rate and read bandwidth, and how
// close decode came to the lower of two ceilings measured in the same run: the I/O
// ceiling (the device's sequential bandwidth / expert bytes read per token) and the
// compute ceiling (decode with every expert it needs already in memory).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_args.h"
#include "commands.h"
#include "human.h"
#include "model_options.h"
#include "moestream.hpp"
#include "storage/sequential_bandwidth.h"

namespace mst::cli {
namespace {

const char *const kBenchHelp =
    "usage: moestream bench -m PATH [options] [model options]\n"
    "Measure streaming speed against the device's limits.\n"
    "  --prompt-tokens N         prompt length (default 64)\n"
    "  --gen-tokens N            decode steps timed (default 32)\n"
    "  --cold                    start every setting from an empty page cache (the model's files\n"
    "                            are dropped with posix_fadvise; reads then come from the device)\n"
    "  --no-ceilings             skip measuring the I/O and compute ceilings\n"
    "  --sweep-experts K1,...    settings: experts per token\n"
    "  --sweep-storage T1,...    settings: storage tiers\n"
    "  --sweep-policy P1,...     settings: cache policies\n"
    "  --sweep-cache-mb M1,...   settings: expert cache budgets\n"
    "  --json FILE               write every measurement as JSON\n";

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

double percentile(std::vector<double> v, double q) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5))];
}

struct Setting {
    std::string label;
    std::string storage, policy;
    int32_t experts_per_token = 0;
    uint64_t cache_bytes = 0;
};

struct Run {
    double load_s = 0, ttft_s = 0, prefill_tps = 0, decode_tps = 0;
    std::vector<double> latencies;
    uint64_t decode_bytes = 0, hits = 0, misses = 0;
    double read_s = 0;
    std::vector<int32_t> tokens;  // the decoded sequence, replayed for the compute ceiling
};

std::vector<int32_t> synthetic_prompt(int32_t n, int32_t vocab) {
    std::vector<int32_t> ids;
    for (int32_t i = 0; i < n; ++i) ids.push_back(int32_t((uint64_t(i) * 7919u + 13u) % uint64_t(vocab)));
    return ids;
}

Run run_setting(const std::string &path, mst_model_params params, int32_t prompt_tokens, int32_t gen_tokens) {
    Run r;
    auto t0 = Clock::now();
    const ModelHandle model(path, params);
    r.load_s = since(t0);
    mst_session_params sp = session_params();
    sp.n_ctx = uint32_t(prompt_tokens + gen_tokens + 1);
    SessionHandle session(model, sp);
    mst_sampler_params greedy = sampler_params();
    greedy.temperature = 0;
    const std::vector<int32_t> prompt = synthetic_prompt(prompt_tokens, model.info().n_vocab);
    t0 = Clock::now();
    session.eval(prompt);
    int32_t token = session.sample(greedy);
    r.ttft_s = since(t0);
    const mst_session_stats after_prompt = session.stats();
    r.prefill_tps = after_prompt.prompt_tokens_per_second;
    for (int32_t i = 0; i < gen_tokens; ++i) {
        r.tokens.push_back(token);
        t0 = Clock::now();
        session.eval({token});
        token = session.sample(greedy);
        r.latencies.push_back(since(t0));
    }
    const mst_session_stats s = session.stats();
    r.decode_tps = s.decode_tokens_per_second;
    r.decode_bytes = s.expert_bytes_read - after_prompt.expert_bytes_read;
    r.hits = s.expert_cache_hits - after_prompt.expert_cache_hits;
    r.misses = s.expert_cache_misses - after_prompt.expert_cache_misses;
    r.read_s = s.expert_read_seconds - after_prompt.expert_read_seconds;
    return r;
}

// Decode tok/s with the experts in memory: the same prompt and tokens twice on a model
// whose cache holds every expert; the second pass is timed. Misses left mean the cache
// could not hold what the sequence touched, and are reported.
std::pair<double, uint64_t> compute_ceiling(const std::string &path, mst_model_params params, const Run &run,
                                            int32_t prompt_tokens) {
    params.expert_cache_bytes = std::numeric_limits<uint64_t>::max() / 2;
    params.prefetch = 0;
    const ModelHandle model(path, params);
    mst_session_params sp = session_params();
    sp.n_ctx = uint32_t(prompt_tokens + int32_t(run.tokens.size()) + 1);
    const std::vector<int32_t> prompt = synthetic_prompt(prompt_tokens, model.info().n_vocab);
    double seconds = 0;
    uint64_t misses = 0;
    for (int pass = 0; pass < 2; ++pass) {
        SessionHandle session(model, sp);
        session.eval(prompt);
        const mst_session_stats before = session.stats();
        for (int32_t token : run.tokens) session.eval({token});
        const mst_session_stats after = session.stats();
        seconds = after.decode_seconds - before.decode_seconds;
        misses = after.expert_cache_misses - before.expert_cache_misses;
    }
    return {seconds > 0 ? double(run.tokens.size()) / seconds : 0.0, misses};
}

}  // namespace

int cmd_bench(const std::vector<std::string> &argv) {
    std::vector<std::string> flags = model_option_flags();
    flags.insert(flags.end(), {"cold", "no-ceilings", "help"});
    const Args args(argv, flags, {{"-m", "--model"}, {"-h", "--help"}});
    if (args.flag("help")) {
        fmt::print("{}{}", kBenchHelp, kModelOptionsHelp);
        return 0;
    }
    std::vector<std::string> known = model_option_names();
    known.insert(known.end(), {"prompt-tokens", "gen-tokens", "cold", "no-ceilings", "sweep-experts", "sweep-storage",
                               "sweep-policy", "sweep-cache-mb", "json", "help"});
    args.reject_unknown(known);
    const std::string path = args.require("model");
    const int32_t prompt_tokens = int32_t(args.int_or("prompt-tokens", 64));
    const int32_t gen_tokens = int32_t(args.int_or("gen-tokens", 32));
    if (prompt_tokens < 1 || gen_tokens < 1) throw UsageError("--prompt-tokens and --gen-tokens must be positive");

    std::string backend, storage, cache_policy;
    const mst_model_params base = model_params_from(args, backend, storage, cache_policy);
    std::vector<Setting> settings{{"", storage, cache_policy, base.experts_per_token, base.expert_cache_bytes}};
    auto vary = [&](const char *option, auto apply) {
        auto values = args.get(option);
        if (!values) return;
        std::vector<Setting> next;
        for (const Setting &s : settings)
            for (const std::string &v : split(*values)) next.push_back(apply(s, v));
        settings = std::move(next);
    };
    vary("sweep-experts", [](Setting s, const std::string &v) { s.experts_per_token = std::stoi(v); return s; });
    vary("sweep-storage", [](Setting s, const std::string &v) { s.storage = v; return s; });
    vary("sweep-policy", [](Setting s, const std::string &v) { s.policy = v; return s; });
    vary("sweep-cache-mb", [](Setting s, const std::string &v) { s.cache_bytes = std::stoull(v) << 20; return s; });

    const std::vector<std::string> files = model_files(path);
    const SequentialBandwidth seq = measure_sequential_bandwidth(files, 2ull << 30);
    fmt::print("device sequential read: {:.0f} MB/s ({} in {} reads{})\n", seq.bytes_per_second / 1e6,
               bytes_str(seq.bytes_read), seq.direct ? "O_DIRECT" : "buffered, cache dropped",
               seq.direct ? "" : "; the filesystem refused O_DIRECT");

    fmt::print("{:<34} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>11} {:>6} {:>9} {:>9} {:>9} {:>8}\n", "setting",
               "TTFT s", "pre t/s", "dec t/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "bytes/tok", "hit%",
               "read MB/s", "io ceil", "cpu ceil", "roofline");
    nlohmann::json results = nlohmann::json::array();
    for (const Setting &s : settings) {
        mst_model_params p = base;
        p.storage = s.storage.c_str();
        p.cache_policy = s.policy.c_str();
        p.experts_per_token = s.experts_per_token;
        p.expert_cache_bytes = s.cache_bytes;
        const std::string label = fmt::format("k={} {} {} {}", s.experts_per_token ? std::to_string(s.experts_per_token)
                                                                                   : std::string("model"),
                                              s.storage, s.policy, bytes_str(s.cache_bytes));
        if (args.flag("cold")) evict_from_page_cache(files);
        const Run r = run_setting(path, p, prompt_tokens, gen_tokens);
        const double bytes_per_token = double(r.decode_bytes) / double(gen_tokens);
        const double io_ceiling = bytes_per_token > 0 ? seq.bytes_per_second / bytes_per_token
                                                      : std::numeric_limits<double>::infinity();
        double cpu_ceiling = 0;
        uint64_t ceiling_misses = 0;
        if (!args.flag("no-ceilings")) std::tie(cpu_ceiling, ceiling_misses) = compute_ceiling(path, p, r, prompt_tokens);
        const double ceiling = cpu_ceiling > 0 ? std::min(io_ceiling, cpu_ceiling) : io_ceiling;
        const double roofline = ceiling > 0 && std::isfinite(ceiling) ? r.decode_tps / ceiling : 0.0;
        const uint64_t lookups = r.hits + r.misses;
        fmt::print("{:<34} {:>7.3f} {:>8.1f} {:>8.2f} {:>8.1f} {:>8.1f} {:>8.1f} {:>8.1f} {:>11} {:>5.1f}% {:>9.0f} "
                   "{:>9.2f} {:>9.2f} {:>7.1f}%\n",
                   label, r.ttft_s, r.prefill_tps, r.decode_tps, 1e3 * percentile(r.latencies, 0.5),
                   1e3 * percentile(r.latencies, 0.9), 1e3 * percentile(r.latencies, 0.99),
                   1e3 * percentile(r.latencies, 1.0), bytes_str(uint64_t(bytes_per_token)),
                   lookups ? 100.0 * double(r.hits) / double(lookups) : 0.0,
                   r.read_s > 0 ? double(r.decode_bytes) / r.read_s / 1e6 : 0.0, io_ceiling, cpu_ceiling,
                   100.0 * roofline);
        if (ceiling_misses)
            fmt::print("  (compute ceiling had {} cache misses: the cache could not hold every expert)\n",
                       ceiling_misses);
        results.push_back({{"setting", label}, {"storage", s.storage}, {"cache_policy", s.policy},
                           {"experts_per_token", s.experts_per_token}, {"cache_bytes", s.cache_bytes},
                           {"load_seconds", r.load_s}, {"ttft_seconds", r.ttft_s}, {"prefill_tps", r.prefill_tps},
                           {"decode_tps", r.decode_tps}, {"latency_p50", percentile(r.latencies, 0.5)},
                           {"latency_p90", percentile(r.latencies, 0.9)}, {"latency_p99", percentile(r.latencies, 0.99)},
                           {"latency_max", percentile(r.latencies, 1.0)}, {"expert_bytes_per_token", bytes_per_token},
                           {"hit_rate", lookups ? double(r.hits) / double(lookups) : 0.0},
                           {"read_bytes_per_second", r.read_s > 0 ? double(r.decode_bytes) / r.read_s : 0.0},
                           {"io_ceiling_tps", std::isfinite(io_ceiling) ? io_ceiling : -1.0},
                           {"compute_ceiling_tps", cpu_ceiling}, {"roofline_fraction", roofline}});
    }
    if (auto json_path = args.get("json")) {
        std::ofstream out(*json_path);
        out << nlohmann::json{{"model", path},
                              {"sequential_bytes_per_second", seq.bytes_per_second},
                              {"sequential_direct", seq.direct},
                              {"cold", args.flag("cold")},
                              {"prompt_tokens", prompt_tokens},
                              {"gen_tokens", gen_tokens},
                              {"results", results}}
                   .dump(2);
        if (!out) throw UsageError("cannot write --json file '" + *json_path + "'");
    }
    return 0;
}

}  // namespace mst::cli
