// Where a prompt's first pass and its time to first token go on the CPU backend: the
// model's load, then the prompt in a fresh session on the model just loaded (a first
// pass: every expert it routes to comes through the storage tier), then the same prompt
// again in a second session (every expert a cache hit). Each pass is broken down per op
// kind (dense matmuls by weight type, the routed experts' grouped products, attention,
// norms), the LM head (the last row only), the wait for expert reads and the host work
// between ops.
//
//   bench_prefill -m MODEL [--threads N] [--prompt N] [--storage T] [--cache-mb N] [--no-verify]
//
// bench/README.md "Prefill, first token and load on the CPU" records results.
#include <fmt/format.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_args.h"
#include "bench/cpu_bench_setup.h"
#include "core/error.h"
#include "core/op_profile.h"
#include "model/loaded_model.h"
#include "session/sampler.h"
#include "session/session.h"

namespace {

using mst::bench::Clock;
using mst::bench::process_cpu_seconds;
using mst::bench::seconds_since;

struct Options : mst::bench::CommonOptions {
    Options() : CommonOptions(45) {}
    std::string storage = "auto";
    int64_t cache_mb = 16384;
    bool verify = true;
};

Options parse(int argc, char **argv) {
    Options o;
    mst::bench::parse_options(
        o, "bench_prefill",
        "bench_prefill -m MODEL [--threads N] [--prompt N] [--storage T] [--cache-mb N] [--no-verify]", "MODEL", argc,
        argv, [&](mst::bench::ArgReader &args) {
            const std::string &a = args.option();
            if (a == "--storage") o.storage = args.value();
            else if (a == "--cache-mb") o.cache_mb = args.count(1, int64_t(1) << 30);
            else if (a == "--no-verify") o.verify = false;
            else return false;
            return true;
        });
    return o;
}

// One prompt in a fresh session with the profile on: its wall and CPU seconds, the
// profile, and the session's expert I/O.
struct Pass {
    double wall = 0, cpu = 0;
    // The rest of a time to first token: the session's creation (its KV cache), and the
    // first sample from the last row's logits as `moestream bench` draws it (temperature 1,
    // no top-k / top-p / min-p: the whole vocabulary) and greedily.
    double session_s = 0, sample_s = 0, greedy_s = 0;
    mst::OpProfileSnapshot profile;
    mst::ExpertIoStats io;
};

Pass prompt_pass(mst::LoadedModel &model, const std::vector<int32_t> &prompt) {
    mst::SessionOptions so;
    so.n_ctx = int32_t(prompt.size() + 1);
    so.n_batch = int32_t(prompt.size());
    const auto t_session = Clock::now();
    mst::Session session(model, so);
    const double session_s = seconds_since(t_session);
    mst::op_profile_reset();
    mst::op_profile_enable(true);
    const double cpu0 = process_cpu_seconds();
    const auto t0 = Clock::now();
    session.eval(prompt, mst::EvalKind::Prompt);
    Pass p;
    p.wall = seconds_since(t0);
    p.cpu = process_cpu_seconds() - cpu0;
    mst::op_profile_enable(false);
    p.profile = mst::op_profile_snapshot();
    p.io = session.stats().io;
    p.session_s = session_s;
    mst::SamplerOptions full;
    full.temperature = 1.0f;
    full.top_k = 0;
    full.top_p = 1.0f;
    full.min_p = 0.0f;
    std::mt19937_64 rng(1);
    auto t_sample = Clock::now();
    mst::sample_token(session.last_logits(), prompt, full, rng);
    p.sample_s = seconds_since(t_sample);
    mst::SamplerOptions greedy;
    greedy.temperature = 0.0f;
    t_sample = Clock::now();
    mst::sample_token(session.last_logits(), prompt, greedy, rng);
    p.greedy_s = seconds_since(t_sample);
    return p;
}

void print_pass(const char *title, const Pass &p, int n_tokens) {
    fmt::print("\n{}: {:.3f} s wall ({:.1f} tok/s), {:.3f} CPU s\n", title, p.wall, n_tokens / p.wall, p.cpu);
    // CPU ms: the threads' CPU time working for the op (no waits, no time descheduled), what
    // an op costs on a shared machine; its share is of the pass's CPU seconds.
    fmt::print("{:<18} {:>7} {:>9} {:>6} {:>10} {:>9} {:>6}\n", "op", "calls", "ms", "share", "MB", "CPU ms",
               "share");
    double op_seconds = 0;
    for (const auto &[kind, t] : p.profile.by_kind) {
        op_seconds += t.seconds;
        fmt::print("{:<18} {:>7} {:>9.1f} {:>5.1f}% {:>10.1f} {:>9.1f} {:>5.1f}%\n", kind, t.calls, 1e3 * t.seconds,
                   100 * t.seconds / p.wall, double(t.bytes) / 1e6, 1e3 * t.cpu_seconds,
                   100 * t.cpu_seconds / p.cpu);
    }
    const auto head = p.profile.by_layer.find(-1);
    if (head != p.profile.by_layer.end())
        fmt::print("{:<18} {:>7} {:>9.1f} {:>5.1f}% {:>10} {:>9.1f} {:>5.1f}%   (of the ops above: embeddings, final "
                   "norm, LM head)\n",
                   "  outside layers", "", 1e3 * head->second.seconds, 100 * head->second.seconds / p.wall, "",
                   1e3 * head->second.cpu_seconds, 100 * head->second.cpu_seconds / p.cpu);
    fmt::print("{:<18} {:>7} {:>9.1f} {:>5.1f}% {:>10.1f}   (experts read and waited for: part of host below)\n",
               "expert reads", p.io.misses, 1e3 * p.io.read_seconds, 100 * p.io.read_seconds / p.wall,
               double(p.io.bytes_read) / 1e6);
    const double host = p.wall - op_seconds;
    fmt::print("{:<18} {:>7} {:>9.1f} {:>5.1f}%   (wall minus the ops: expert reads waited for, routing, "
               "residual adds, allocation)\n", "host", "", 1e3 * host, 100 * host / p.wall);
    const mst::RegionTotals &r = p.profile.regions;
    if (r.regions > 0)
        fmt::print("parallel regions: {}, {:.0f} us each; threads busy {:.1f}% of the time they were held\n", r.regions,
                   1e6 * r.wall_seconds / double(r.regions), 100 * r.busy_seconds / r.thread_seconds);
    fmt::print("outside the pass: session created in {:.1f} ms; first sample {:.1f} ms (whole vocabulary, temperature "
               "1, as moestream bench), {:.1f} ms greedy\n",
               1e3 * p.session_s, 1e3 * p.sample_s, 1e3 * p.greedy_s);
}

int run(const Options &o) {
    mst::bench::CpuModel loaded =
        mst::bench::load_cpu_model(o.model, o.threads, uint64_t(o.cache_mb) << 20, o.storage, o.verify);
    std::unique_ptr<mst::LoadedModel> &model = loaded.model;
    const double load_s = loaded.load_seconds;
    fmt::print("model {} ({} storage) loaded in {:.3f} s wall, {:.3f} CPU s\n", o.model, model->storage_name, load_s,
               loaded.load_cpu_seconds);
    const std::vector<int32_t> prompt =
        mst::bench::token_sequence(o.prompt, int32_t(model->config.vocab_size), 0);

    const Pass first = prompt_pass(*model, prompt);
    const Pass second = prompt_pass(*model, prompt);
    print_pass("first pass (experts through the storage tier)", first, o.prompt);
    print_pass("second pass (experts cached)", second, o.prompt);
    fmt::print("\nload + first pass: {:.3f} s wall\n", load_s + first.wall);
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    const Options o = parse(argc, argv);
    return mst::bench::run_reporting_errors("bench_prefill", [&] { return run(o); });
}
