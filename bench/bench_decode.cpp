// Warm single-token decode on the CPU backend: tok/s over interleaved rounds, the weight
// bytes a token reads and the rate it reads them at, against the memory read bandwidth
// measured in the same run with the same thread count (the best of bench/read_bandwidth.h's
// probes); with --profile, where a decode step's time goes (per op kind, per layer, parallel regions, host work between ops).
//
//   bench_decode -m MODEL.mst [--threads N] [--prompt N] [--tokens N] [--rounds N] [--profile]
//
// "Warm": an untimed pass first decodes the same tokens so that the expert cache holds
// every expert they route to; each timed round then decodes them again in a fresh session
// (teacher-forced, a fixed pseudo-random token sequence), every expert a cache hit.
// bench/README.md "Decode profile" records results.
#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "backends/cpu/parallel_for.h"
#include "bench/bench_args.h"
#include "bench/cpu_bench_setup.h"
#include "bench/read_bandwidth.h"
#include "core/error.h"
#include "core/op_profile.h"
#include "model/loaded_model.h"
#include "session/bench_stats.h"
#include "session/session.h"

namespace {

using mst::bench::Clock;
using mst::bench::process_cpu_seconds;
using mst::bench::seconds_since;

struct Options : mst::bench::CommonOptions {
    Options() : CommonOptions(8) {}
    int tokens = 32;
    int rounds = 3;
    bool profile = false;
};

Options parse(int argc, char **argv) {
    Options o;
    mst::bench::parse_options(
        o, "bench_decode", "bench_decode -m MODEL.mst [--threads N] [--prompt N] [--tokens N] [--rounds N] [--profile]",
        "MODEL.mst", argc, argv, [&](mst::bench::ArgReader &args) {
            const std::string &a = args.option();
            if (a == "--tokens") o.tokens = int(args.count(1, 100000));
            else if (a == "--rounds") o.rounds = int(args.count(1, 1000));
            else if (a == "--profile") o.profile = true;
            else return false;
            return true;
        });
    return o;
}

struct RoundTime {
    double wall = 0, cpu = 0;
};

// Decodes `tokens` after `prompt` in a fresh session; returns the decode's wall and CPU seconds.
RoundTime decode_round(mst::LoadedModel &model, const std::vector<int32_t> &prompt, const std::vector<int32_t> &tokens) {
    mst::SessionOptions so;
    so.n_ctx = int32_t(prompt.size() + tokens.size() + 1);
    mst::Session session(model, so);
    session.eval(prompt, mst::EvalKind::Prompt);
    const auto t0 = Clock::now();
    const double cpu0 = process_cpu_seconds();
    for (int32_t t : tokens) session.eval(std::span<const int32_t>(&t, 1), mst::EvalKind::Decode);
    return {seconds_since(t0), process_cpu_seconds() - cpu0};
}

// Where the threads' time went (issue 16 item 1): every thread's wall time in the decode,
// thread-ms per token, split into the regions' bodies, the regions' hand-offs and
// imbalance, and the time between regions, when the calling thread runs alone.
void print_thread_time(const mst::OpProfileSnapshot &p, double wall, int n_tokens, int threads) {
    const mst::RegionTotals &r = p.regions;
    const double per = 1e3 / n_tokens;
    const double serial = wall - r.wall_seconds;  // the caller alone, between regions
    double ops_serial = 0;  // of which inside ops (small ops, activation quantization, top-k)
    for (const auto &[kind, t] : p.by_kind) ops_serial += t.seconds - t.region_seconds;
    const double total = wall * threads;
    auto line = [&](const char *what, double seconds) {
        fmt::print("  {:<58} {:>8.3f} {:>5.1f}%\n", what, seconds * per, 100 * seconds / total);
    };
    fmt::print("\nthread-ms per token: {} threads x {:.3f} ms wall = {:.3f}\n", threads, wall * per, total * per);
    line("in region bodies (busy)", r.busy_seconds);
    fmt::print("    (of which on a CPU {:.3f}; the rest descheduled)\n", r.busy_cpu_seconds * per);
    line("hand-off out: dispatch to a thread's body start", r.start_wait_seconds);
    fmt::print("    ({:.1f} of the {:.1f} regions a token woke a sleeping worker: a gap longer than the {} us spin)\n",
               double(r.sleeper_wakeups) / n_tokens, double(r.regions) / n_tokens, mst::parallel_for_spin_micros());
    line("imbalance: a thread done, waiting for the last one", r.imbalance_seconds);
    line("hand-off back: last body done to the caller's return", r.finish_wait_seconds);
    line("serial: the caller alone between regions", serial);
    fmt::print("    (of which inside ops {:.3f}, host work between ops {:.3f})\n", ops_serial * per,
               (serial - ops_serial) * per);
    line("serial: the other threads idle meanwhile", total - r.thread_seconds - serial);
    fmt::print("lost (all but the bodies): {:.3f} thread-ms per token, {:.1f}%\n", (total - r.busy_seconds) * per,
               100 * (total - r.busy_seconds) / total);
    fmt::print("\nregions by op: per token: regions, wall ms, thread-ms busy / hand-off out / imbalance / hand-off "
               "back; the op's serial ms (outside its regions); regions that woke a sleeping worker\n"
               "{:<16} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}\n",
               "op", "regions", "wall", "busy", "out", "imbal", "back", "serial", "woken");
    for (const auto &[kind, t] : p.by_kind) {
        const auto it = p.regions_by_kind.find(kind);
        const mst::RegionTotals rk = it == p.regions_by_kind.end() ? mst::RegionTotals{} : it->second;
        fmt::print("{:<16} {:>7.1f} {:>8.3f} {:>8.3f} {:>8.3f} {:>8.3f} {:>8.3f} {:>8.3f} {:>6.1f}\n", kind,
                   double(rk.regions) / n_tokens, rk.wall_seconds * per, rk.busy_seconds * per,
                   rk.start_wait_seconds * per, rk.imbalance_seconds * per, rk.finish_wait_seconds * per,
                   (t.seconds - t.region_seconds) * per, double(rk.sleeper_wakeups) / n_tokens);
    }
    if (const auto it = p.regions_by_kind.find("(no op)"); it != p.regions_by_kind.end())
        fmt::print("{:<16} {:>7.1f} {:>8.3f}\n", it->first, double(it->second.regions) / n_tokens,
                   it->second.wall_seconds * per);
}

void print_profile(const mst::OpProfileSnapshot &p, double wall, int n_tokens, int threads) {
    double op_seconds = 0;
    for (const auto &[kind, t] : p.by_kind) op_seconds += t.seconds;
    const double per = 1e3 / n_tokens;
    auto rate = [](uint64_t bytes, double seconds) { return seconds > 0 ? double(bytes) / seconds / 1e9 : 0.0; };
    fmt::print("\nper decode token ({} tokens, {:.2f} ms each); CPU ms: the threads' CPU time working for the op "
               "(no waits, no time descheduled), GB/CPU-s: bytes per second of that\n",
               n_tokens, wall * per);
    fmt::print("{:<16} {:>7} {:>9} {:>6} {:>10} {:>8} {:>9} {:>9}\n", "op", "calls", "ms", "share", "MB", "GB/s",
               "CPU ms", "GB/CPU-s");
    for (const auto &[kind, t] : p.by_kind)
        fmt::print("{:<16} {:>7.1f} {:>9.3f} {:>5.1f}% {:>10.2f} {:>8.2f} {:>9.3f} {:>9.2f}\n", kind,
                   double(t.calls) / n_tokens, t.seconds * per, 100 * t.seconds / wall,
                   double(t.bytes) / 1e6 / n_tokens, rate(t.bytes, t.seconds), t.cpu_seconds * per,
                   rate(t.bytes, t.cpu_seconds));
    fmt::print("{:<16} {:>7} {:>9.3f} {:>5.1f}%   (wall minus the ops: routing, residual adds, expert lookups, "
               "allocation)\n",
               "host", "", (wall - op_seconds) * per, 100 * (wall - op_seconds) / wall);
    fmt::print("\nper layer (-1: embeddings, final norm, LM head):\n{:<6} {:>9} {:>10} {:>8} {:>9} {:>9}\n", "layer",
               "ms", "MB", "GB/s", "CPU ms", "GB/CPU-s");
    for (const auto &[layer, t] : p.by_layer)
        fmt::print("{:<6} {:>9.3f} {:>10.2f} {:>8.2f} {:>9.3f} {:>9.2f}\n", layer, t.seconds * per,
                   double(t.bytes) / 1e6 / n_tokens, rate(t.bytes, t.seconds), t.cpu_seconds * per,
                   rate(t.bytes, t.cpu_seconds));
    const mst::RegionTotals &r = p.regions;
    if (r.regions > 0)
        fmt::print("\nparallel regions: {:.1f} per token, {:.1f} us each; threads busy {:.1f}% of the time they were "
                   "held ({:.3f} of {:.3f} thread-ms per token), regions {:.1f}% of the wall time; of the busy time "
                   "{:.1f}% on a CPU (the rest descheduled)\n",
                   double(r.regions) / n_tokens, 1e6 * r.wall_seconds / double(r.regions),
                   100 * r.busy_seconds / r.thread_seconds, r.busy_seconds * per, r.thread_seconds * per,
                   100 * r.wall_seconds / wall, r.busy_seconds > 0 ? 100 * r.busy_cpu_seconds / r.busy_seconds : 0.0);
    print_thread_time(p, wall, n_tokens, threads);
}

int run(const Options &o) {
    // The best of several read probes (bench/read_bandwidth.h) is the ceiling a token's
    // reads are compared with; the plain sum is printed too, the probe of earlier reports.
    double read_bw = 0, sum_bw = 0;
    for (const mst::bench::ReadProbe &p : mst::bench::measure_read_bandwidth(o.threads)) {
        fmt::print("  read probe {:<24} {:6.2f} GB/s{}\n", p.name, p.bytes_per_second / 1e9,
                   p.sum_ok ? "" : " (wrong sum: not counted)");
        if (!p.sum_ok) continue;
        read_bw = std::max(read_bw, p.bytes_per_second);
        if (p.name == "sum") sum_bw = p.bytes_per_second;
    }
    fmt::print("memory read bandwidth ({} threads, 1 GiB, best probe of 4 passes each): {:.2f} GB/s\n", o.threads,
               read_bw / 1e9);

    // An expert cache of 16 GiB: every expert the tokens touch stays.
    mst::bench::CpuModel loaded = mst::bench::load_cpu_model(o.model, o.threads, uint64_t(16) << 30);
    std::unique_ptr<mst::LoadedModel> &model = loaded.model;
    fmt::print("model {} loaded in {:.3f} s\n", o.model, loaded.load_seconds);
    for (const mst::LoadPhase &ph : model->load_phases)
        fmt::print("  load: {:<60} {:7.3f} s, CPU {:7.3f} s\n", ph.name, ph.seconds, ph.cpu_seconds);
    const int32_t vocab = int32_t(model->config.vocab_size);
    const std::vector<int32_t> prompt = mst::bench::token_sequence(o.prompt, vocab, 0);
    const std::vector<int32_t> tokens = mst::bench::token_sequence(o.tokens, vocab, 1000);

    decode_round(*model, prompt, tokens);  // fills the expert cache
    std::vector<double> tps, cpu_ms;
    for (int r = 0; r < o.rounds; ++r) {
        const RoundTime t = decode_round(*model, prompt, tokens);
        tps.push_back(double(o.tokens) / t.wall);
        cpu_ms.push_back(1e3 * t.cpu / o.tokens);
    }

    // One more round with the profile on: the bytes a token reads, and the breakdown.
    mst::op_profile_reset();
    mst::op_profile_enable(true);
    mst::SessionOptions so;
    so.n_ctx = int32_t(prompt.size() + tokens.size() + 1);
    mst::Session session(*model, so);
    session.eval(prompt, mst::EvalKind::Prompt);
    mst::op_profile_reset();
    const auto t0 = Clock::now();
    // A hash of every decoded token's logits: two binaries (or thread counts, splits) that
    // compute the same bits print the same hash.
    XXH64_state_t *logits_hash = XXH64_createState();
    XXH64_reset(logits_hash, 0);
    for (int32_t t : tokens) {
        session.eval(std::span<const int32_t>(&t, 1), mst::EvalKind::Decode);
        const std::span<const float> l = session.last_logits();
        XXH64_update(logits_hash, l.data(), l.size_bytes());
    }
    const double profiled_wall = seconds_since(t0);
    const uint64_t logits_digest = XXH64_digest(logits_hash);
    XXH64_freeState(logits_hash);
    mst::op_profile_enable(false);
    const mst::OpProfileSnapshot p = mst::op_profile_snapshot();
    uint64_t bytes = 0;
    for (const auto &[kind, t] : p.by_kind) bytes += t.bytes;
    const double bytes_per_token = double(bytes) / o.tokens;

    const double med = mst::percentile(tps, 0.5);
    fmt::print("decode tok/s over {} rounds of {} tokens: min {:.2f} median {:.2f} max {:.2f}\n", o.rounds, o.tokens,
               mst::percentile(tps, 0.0), med, mst::percentile(tps, 1.0));
    fmt::print("CPU time per token (all threads): min {:.1f} median {:.1f} max {:.1f} ms\n",
               mst::percentile(cpu_ms, 0.0), mst::percentile(cpu_ms, 0.5), mst::percentile(cpu_ms, 1.0));
    fmt::print("bytes read per token: {:.1f} MB; at the median: {:.2f} GB/s = {:.0f}% of the read bandwidth\n",
               bytes_per_token / 1e6, bytes_per_token * med / 1e9, 100 * bytes_per_token * med / read_bw);
    if (sum_bw > 0) fmt::print("  ({:.0f}% of the plain sum probe)\n", 100 * bytes_per_token * med / sum_bw);
    fmt::print("logits of the {} decoded tokens (profiled round), XXH64: {:016x}\n", o.tokens, logits_digest);
    if (o.profile) print_profile(p, profiled_wall, o.tokens, o.threads);
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    const Options o = parse(argc, argv);
    return mst::bench::run_reporting_errors("bench_decode", [&] { return run(o); });
}
