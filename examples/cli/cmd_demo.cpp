// `moestream demo`: the shortest way to see experts stream. On first run it synthesizes
// a model with the real shape of Qwen3-30B-A3B, cut to a few layers so that it fits in a
// few GB and a few minutes on a small machine, and caches it; every run then generates
// text under an expert-cache budget smaller than the expert set and reports tok/s,
// expert bytes streamed per token, the hit rate, and how close decode came to the
// device's limit (its sequential read bandwidth / the expert bytes each token read).

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "cli_args.h"
#include "commands.h"
#include "demo_config.h"
#include "human.h"
#include "moestream.hpp"
#include "progress_line.h"
#include "thread_count.h"
#include "session/bench_stats.h"
#include "storage/sequential_bandwidth.h"

namespace mst::cli {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kDefaultLayers = 8;
constexpr int64_t kDefaultCacheMb = 1024;
constexpr int64_t kDefaultTokens = 48;
constexpr const char *kDefaultPrompt = "The quickest way to read a model from disk is";

const char *const kDemoHelp =
    "usage: moestream demo [options]\n"
    "Synthesize (on first run) a model with the real shape of Qwen3-30B-A3B (hidden 2048, 128\n"
    "experts of 768 per layer, 8 per token, vocab 151936) cut to a few of its 48 layers, with\n"
    "random weights and q4 experts; cache it; generate text with an expert cache smaller than the\n"
    "expert set, streaming the rest from disk; report tok/s, expert bytes per token, hit rate and\n"
    "the fraction of the disk's limit reached. The text is noise; the traffic is the real shape's.\n"
    "  --layers N                layers of the 48 to keep (default 8: about 3 GiB of experts,\n"
    "                            1.5 GiB resident)\n"
    "  --cache-mb N              expert cache budget in MiB (default 1024; 0 = no expert cache)\n"
    "  --tokens N                tokens to generate (default 48)\n"
    "  --prompt TEXT             the prompt (default: a sentence about reading models from disk)\n"
    "  --model-dir DIR           where the synthesized model is kept (default: $MST_CACHE_DIR, else\n"
    "                            $XDG_CACHE_HOME/moestream, else ~/.cache/moestream)\n"
    "  --threads N               compute threads (default: all cores)\n"
    "  --seed S                  sampling seed (default 1)\n";

// Where synthesized models are kept between runs.
fs::path default_model_dir() {
    if (const char *dir = std::getenv("MST_CACHE_DIR"); dir && *dir) return dir;
    if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "moestream";
    if (const char *home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache" / "moestream";
    throw UsageError("no cache directory: set MST_CACHE_DIR or HOME, or pass --model-dir");
}

std::string read_file(const fs::path &path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const fs::path &path, const std::string &text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw UsageError("cannot write '" + path.string() + "'");
}

void synthesize(const fs::path &config, const fs::path &model, int64_t layers, bool force) {
    mst_synthesize_params params;
    mst_synthesize_default_params(&params);
    params.layers = int32_t(layers);
    params.force = force ? 1 : 0;
    mst_synthesize_report report{};
    report.struct_size = sizeof report;
    check(write_with_progress(params, [&] { return mst_synthesize(config.c_str(), model.c_str(), &params, &report); }));
    print_synth_report(model.string(), report);
}

}  // namespace

int cmd_demo(const std::vector<std::string> &argv) {
    const Args args(argv, {"help"}, {{"-h", "--help"}});
    if (args.flag("help")) {
        fmt::print("{}", kDemoHelp);
        return 0;
    }
    // --config is for tests and experiments: another config.json instead of Qwen3-30B-A3B.
    args.reject_unknown({"layers", "cache-mb", "tokens", "prompt", "model-dir", "threads", "seed", "config", "help"});
    args.reject_positional();
    const int64_t cache_mb = args.int_in("cache-mb", kDefaultCacheMb, 0, int64_t(UINT64_MAX >> 20));
    const int64_t tokens = args.int_in("tokens", kDefaultTokens, 1, 1000000);
    const int32_t threads = thread_count_from(args);
    const int64_t seed = args.int_in("seed", 1, 0, INT64_MAX);
    const std::string prompt = args.get_or("prompt", kDefaultPrompt);
    const fs::path dir = args.get("model-dir") ? fs::path(*args.get("model-dir")) : default_model_dir();
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (!fs::is_directory(dir)) throw UsageError("cannot create the model directory '" + dir.string() + "'");

    fs::path config;
    std::string shape;
    if (const auto given = args.get("config")) {
        config = *given;
        shape = fs::path(*given).stem().string();
    } else {
        // The config beside the model it made: the file says exactly what was synthesized.
        config = dir / "qwen3-30b-a3b.config.json";
        if (!fs::exists(config) || read_file(config) != kQwen3_30bA3bConfig) write_file(config, kQwen3_30bA3bConfig);
        shape = "qwen3-30b-a3b";
    }
    const int64_t layers = args.int_in("layers", args.get("config") ? 0 : kDefaultLayers, 0, INT32_MAX);
    const fs::path model_path = dir / fmt::format("{}-{}-q4.mst", shape, layers ? fmt::format("{}L", layers) : "all");

    fmt::print(stderr, "demo: the shape of {} ({}), {} layers, q4 experts, random weights\n",
               args.get("config") ? config.string() : "Qwen3-30B-A3B", args.get("config") ? "given config" :
               "hidden 2048, 48 layers of 128 experts of 768, 8 per token, vocab 151936",
               layers ? std::to_string(layers) : std::string("all"));
    const bool reused = fs::exists(model_path);
    if (!reused) {
        fmt::print(stderr, "synthesizing {} (first run; later runs reuse it)\n", model_path.string());
        synthesize(config, model_path, layers, false);
    }

    // The device's own limit, measured on the model's file, then the file dropped from
    // the page cache so that experts come from the device, not from memory.
    const SequentialBandwidth seq = measure_sequential_bandwidth({model_path.string()}, 1ull << 30);
    evict_from_page_cache({model_path.string()});

    mst_model_params mp = model_params();
    mp.expert_cache_bytes = uint64_t(cache_mb) << 20;
    mp.n_threads = threads;
    std::unique_ptr<ModelHandle> model;
    try {
        model = std::make_unique<ModelHandle>(model_path.string(), mp);
        if (reused) fmt::print(stderr, "reusing {} (it loads)\n", model_path.string());
    } catch (const Exception &e) {
        if (!reused) throw;
        fmt::print(stderr, "the cached {} does not load ({}); synthesizing it again\n", model_path.string(), e.what());
        synthesize(config, model_path, layers, true);
        evict_from_page_cache({model_path.string()});
        model = std::make_unique<ModelHandle>(model_path.string(), mp);
    }
    const mst_model_info info = model->info();
    fmt::print(stderr, "experts:  {} on disk, {} each, {} per token at top-{}; cache budget {} ({:.0f}% of them)\n",
               bytes_str(info.expert_bytes_total), bytes_str(info.expert_bytes_each),
               bytes_str(info.expert_bytes_per_token), info.experts_per_token, bytes_str(mp.expert_cache_bytes),
               info.expert_bytes_total ? 100.0 * double(mp.expert_cache_bytes) / double(info.expert_bytes_total) : 0.0);
    if (seq.bytes_per_second > 0)
        fmt::print(stderr, "device:   {:.0f} MB/s sequential read ({}, {} of the model's file)\n",
                   seq.bytes_per_second / 1e6, seq.direct ? "O_DIRECT" : "buffered, page cache dropped",
                   bytes_str(seq.bytes_read));
    else
        fmt::print(stderr, "device:   sequential read not measured (the file is smaller than one 8 MiB read)\n");

    mst_session_params sp = session_params();
    sp.seed = uint64_t(seed);
    const std::vector<int32_t> prompt_ids = model->tokenize(prompt);
    sp.n_ctx = uint32_t(prompt_ids.size() + size_t(tokens) + 1);
    SessionHandle session(*model, sp);
    mst_sampler_params sampler = sampler_params();

    fmt::print("{}", prompt);
    std::fflush(stdout);
    session.eval(prompt_ids);
    const mst_session_stats after_prompt = session.stats();
    for (int64_t i = 0; i < tokens; ++i) {
        const int32_t token = session.sample(sampler);
        const std::string piece = model->detokenize({token});
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        session.eval({token});
    }
    fmt::print("\n");
    std::fflush(stdout);
    const mst_session_stats s = session.stats();

    const double decode_tokens = double(s.n_decode_tokens - after_prompt.n_decode_tokens);
    const double decode_seconds = s.decode_seconds - after_prompt.decode_seconds;
    const double decode_tps = per_second(decode_tokens, decode_seconds);
    const double bytes_per_token =
        decode_tokens > 0 ? double(s.expert_bytes_read - after_prompt.expert_bytes_read) / decode_tokens : 0.0;
    const double hits = hit_rate(s.expert_cache_hits - after_prompt.expert_cache_hits,
                                 s.expert_cache_misses - after_prompt.expert_cache_misses);
    const double ceiling = io_ceiling_tps(seq.bytes_per_second, bytes_per_token);
    fmt::print(stderr, "prompt:   {} tokens at {:.1f} tok/s\n", prompt_ids.size(), after_prompt.prompt_tokens_per_second);
    fmt::print(stderr, "decode:   {:.0f} tokens at {:.2f} tok/s\n", decode_tokens, decode_tps);
    fmt::print(stderr, "streamed: {} of experts per token, cache hit rate {:.1f}%\n", bytes_str(uint64_t(bytes_per_token)),
               100.0 * hits);
    if (seq.bytes_per_second <= 0)
        fmt::print(stderr, "limit:    unknown (the device's bandwidth was not measured)\n");
    else if (std::isfinite(ceiling))
        fmt::print(stderr, "limit:    the device allows {:.2f} tok/s at {} per token; decode reached {:.0f}% of it\n",
                   ceiling, bytes_str(uint64_t(bytes_per_token)), 100.0 * roofline_fraction(decode_tps, ceiling, 0));
    else
        fmt::print(stderr, "limit:    every expert came from the cache; the device set no limit\n");
    const mst_memory_stats mem = model->memory();
    fmt::print(stderr, "memory:   {} resident weights, expert cache peak {} of {}, process peak {}\n",
               bytes_str(mem.resident_weight_bytes), bytes_str(mem.expert_cache_peak_bytes),
               bytes_str(mem.expert_cache_budget), bytes_str(mem.process_peak_rss_bytes));
    return 0;
}

}  // namespace mst::cli
