// Batched decode of several sequences (issue 18 item 4): decode tokens/s summed over N
// concurrent sequences and expert bytes read from storage per generated token, with the
// sequences stepped together (mst_sessions_eval_batch: one read of an expert serves every
// sequence routed to it) against the same sequences taking turns (each evaluated alone,
// what `moestream serve` did before batching).
//
//   bench_batch -m MODEL [--sequences 1,2,4,8] [--tokens N] [--rounds N] [--cache-mb N]
//               [--storage pread] [--threads N]
//
// Each round of each N and mode loads the model afresh ("cold": an empty expert cache; the
// buffered tier drops what it read from the page cache, so storage is read for real),
// decodes N sequences from N different first tokens for --tokens greedy steps, then
// decodes them again in fresh sessions ("warm": the expert cache holds what the cold pass
// left within its budget). Modes and N are interleaved within a round so that a change in
// the machine's load touches them alike. Run it inside bench/limit_memory.sh so that the
// page cache cannot hold the model. bench/README.md "Batched decode of several sequences".
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "moestream.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
    std::string model;
    std::vector<int> sequences{1, 2, 4, 8};
    int tokens = 16;
    int rounds = 3;
    uint64_t cache_mb = 1024;
    std::string storage = "pread";
    int threads = 2;
};

[[noreturn]] void usage(const std::string &why) {
    fmt::print(stderr,
               "bench_batch: {}\nusage: bench_batch -m MODEL [--sequences 1,2,4,8] [--tokens N] [--rounds N] "
               "[--cache-mb N] [--storage pread|direct|mmap|uring] [--threads N]\n",
               why);
    std::exit(2);
}

int positive(const std::string &flag, const char *text) {
    char *end = nullptr;
    const long v = std::strtol(text, &end, 10);
    if (!end || *end || v < 1 || v > 1 << 20) usage(flag + " needs a positive integer, not '" + text + "'");
    return int(v);
}

Options parse(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) usage(a + " needs a value");
        const char *v = argv[++i];
        if (a == "-m") o.model = v;
        else if (a == "--tokens") o.tokens = positive(a, v);
        else if (a == "--rounds") o.rounds = positive(a, v);
        else if (a == "--cache-mb") o.cache_mb = uint64_t(positive(a, v));
        else if (a == "--threads") o.threads = positive(a, v);
        else if (a == "--storage") o.storage = v;
        else if (a == "--sequences") {
            o.sequences.clear();
            std::string list = v;
            for (size_t at = 0; at <= list.size();) {
                const size_t comma = std::min(list.find(',', at), list.size());
                o.sequences.push_back(positive(a, list.substr(at, comma - at).c_str()));
                at = comma + 1;
            }
        } else usage("unknown option " + a);
    }
    if (o.model.empty()) usage("-m MODEL is required");
    return o;
}

struct Pass {
    double tokens_per_second = 0.0;
    double bytes_per_token = 0.0;
};

int32_t argmax(const std::vector<float> &v) { return int32_t(std::max_element(v.begin(), v.end()) - v.begin()); }

// N sequences from N first tokens, `tokens` greedy steps each, together or in turns.
Pass decode(const mst::ModelHandle &model, int n, int tokens, bool together) {
    const int32_t n_vocab = model.info().n_vocab;
    std::vector<std::unique_ptr<mst::SessionHandle>> sessions;
    mst_session_params sp = mst::session_params();
    sp.n_ctx = uint32_t(tokens + 1);
    std::vector<std::vector<int32_t>> next;
    for (int i = 0; i < n; ++i) {
        sessions.push_back(std::make_unique<mst::SessionHandle>(model, sp));
        next.push_back({int32_t((1000 + 7919 * i) % n_vocab)});
    }
    std::vector<mst::SessionHandle *> batch;
    for (auto &s : sessions) batch.push_back(s.get());
    const uint64_t bytes0 = model.cache_stats(-1).bytes_read;
    const auto t0 = Clock::now();
    for (int step = 0; step < tokens; ++step) {
        if (together) mst::eval_batch(batch, next);
        else
            for (int i = 0; i < n; ++i) sessions[size_t(i)]->eval(next[size_t(i)]);
        for (int i = 0; i < n; ++i) next[size_t(i)] = {argmax(sessions[size_t(i)]->logits())};
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    const double generated = double(n) * tokens;
    return {generated / seconds, double(model.cache_stats(-1).bytes_read - bytes0) / generated};
}

std::string min_median_max(std::vector<double> v, double scale, int digits) {
    std::sort(v.begin(), v.end());
    return fmt::format("{:.{}f} / {:.{}f} / {:.{}f}", v.front() * scale, digits, v[v.size() / 2] * scale, digits,
                       v.back() * scale, digits);
}

}  // namespace

int main(int argc, char **argv) {
    const Options o = parse(argc, argv);
    // Results by (N, together, warm): one value per round.
    std::map<std::tuple<int, bool, bool>, std::vector<Pass>> results;
    try {
        for (int round = 0; round < o.rounds; ++round)
            for (const int n : o.sequences)
                for (const bool together : {true, false}) {
                    mst_model_params mp = mst::model_params();
                    mp.backend = "cpu";
                    mp.storage = o.storage.c_str();
                    mp.storage_drop_after_read = 1;
                    mp.expert_cache_bytes = o.cache_mb << 20;
                    mp.n_threads = o.threads;
                    const mst::ModelHandle model(o.model, mp);
                    const Pass cold = decode(model, n, o.tokens, together);
                    const Pass warm = decode(model, n, o.tokens, together);
                    results[{n, together, false}].push_back(cold);
                    results[{n, together, true}].push_back(warm);
                    fmt::print(stderr, "round {} N={} {}: cold {:.2f} tok/s {:.1f} MiB/token, warm {:.2f} tok/s {:.1f} MiB/token\n",
                               round + 1, n, together ? "batched" : "turns", cold.tokens_per_second,
                               cold.bytes_per_token / 1048576.0, warm.tokens_per_second,
                               warm.bytes_per_token / 1048576.0);
                }
    } catch (const std::exception &e) {
        fmt::print(stderr, "bench_batch: {}\n", e.what());
        return 1;
    }
    fmt::print("{} rounds, {} greedy steps per sequence, expert cache {} MiB, storage {}, {} threads\n", o.rounds,
               o.tokens, o.cache_mb, o.storage, o.threads);
    fmt::print("| cache | N | mode | tok/s summed (min / median / max) | expert MiB read per token (min / median / max) |\n");
    fmt::print("|---|---|---|---|---|\n");
    for (const bool warm : {false, true})
        for (const int n : o.sequences)
            for (const bool together : {true, false}) {
                std::vector<double> speed, bytes;
                for (const Pass &p : results[{n, together, warm}]) {
                    speed.push_back(p.tokens_per_second);
                    bytes.push_back(p.bytes_per_token);
                }
                fmt::print("| {} | {} | {} | {} | {} |\n", warm ? "warm" : "cold", n, together ? "batched" : "turns",
                           min_median_max(speed, 1.0, 2), min_median_max(bytes, 1.0 / 1048576.0, 1));
            }
    return 0;
}
