// bench_routing: routing, cache and prefetch numbers from a model's real routing.
//
//   bench_routing record -m MODEL --text FILE --out TRACE [--ctx N] [--predict A] [--max-tokens N] [-k K]
//                        [--ranked M]
//     runs the model over the text in windows of N tokens (fresh state each) and writes the
//     routing trace (router/route_trace_file.h), with the prefetcher's guesses 1..A sparse
//     layers ahead and the router's top M scores.
//   bench_routing replay TRACE [--sizes P1,P2,...] [--policies a,b,...] [--per-layer]
//     replays it against expert caches holding P% of all routed experts under each policy and
//     Belady's offline optimum, and prints routing statistics and prefetch precision/recall.
//   bench_routing gap TRACE [--sizes P1,...] [--policies a,b,...]
//     why the policies miss where Belady hits: each miss split by cause, one-shot experts,
//     per-layer budgets even and sized by reuse, and one token of foresight.
//   bench_routing soft TRACE [TRACE...] [--sizes P1,...] [--weights W1,...] [--half-lives H1,...]
//     lrfu-admit whose scores also gain the router's soft scores (the trace's top-M, recorded
//     with --ranked), for each weight and half-life, against lru, lrfu, lrfu-admit and Belady.
//   bench_routing learned TRACE [TRACE...] [--sizes P1,...] [--windows W1,...] [--mlp W1,...] [--hidden H]
//                         [--follows F] [--online] [--rows N] [--across]
//     a learned eviction policy (learned_eviction.h) fitted on each trace's first half and
//     replayed on its second, or (--across, traces in pairs) fitted on one text's trace and
//     replayed on the other's, against lru, lrfu, lrfu-admit and Belady.
//   bench_routing learned --export --online TRACE [--sizes P] [--windows W1,...] [--mlp W1,...] [--hidden H]
//                         [--follows F] [--rows N]
//     the library's "learned" weights: fitted on the whole trace, printed as C++
//     (lib/experts/eviction_learned_weights.cpp).
//   bench_routing prefetch TRACE [TRACE...]
//     the precision/recall trade-off of the prefetch rules (experts/prefetch_rule.h), fit on the
//     first half of each trace's tokens and measured on the second, and the rule chosen.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "experts/cache_replay.h"
#include "experts/eviction_policies.h"
#include "experts/eviction_policy.h"
#include "learned_eviction.h"
#include "model/loaded_model.h"
#include "router/route_trace_file.h"
#include "router/routing_stats.h"

namespace mst {
namespace {

const char *const kUsage =
    "usage:\n"
    "  bench_routing record -m MODEL --text FILE --out TRACE [--ctx N] [--predict A] [--max-tokens N] [-k K]\n"
    "                       [--ranked M]\n"
    "      --ctx N         tokens per window, each run from a fresh state (default 1024)\n"
    "      --predict A     record the prefetcher's guesses 1..A sparse layers ahead (default 2, 0 = none)\n"
    "      --max-tokens N  use at most N tokens of the text (default 0: all)\n"
    "      -k K            experts per token (default: the model's own)\n"
    "      --ranked M      also record the router's top M with their weights, the scores just below\n"
    "                      the top-k included (default 2 x K, 0 = none; a version 2 trace)\n"
    "  bench_routing replay TRACE [--sizes P1,P2,...] [--policies NAME,...] [--per-layer] [--prefetch-hints S]\n"
    "      --sizes         cache sizes in percent of all routed experts (default 5,10,12.5,15,20,25,30,37.5,40,50)\n"
    "      --policies      eviction policies to replay (default: every policy moestream has)\n"
    "      --per-layer     also replay with the budget split evenly over the layers, a cache each\n"
    "      --prefetch-hints S  also replay each policy told, after each layer, the next layer's guesses\n"
    "                      whose weight share is at least S (0 = all k): residents guessed are touched\n"
    "  bench_routing gap TRACE [--sizes P1,P2,...] [--policies NAME,...]\n"
    "      per cache size and policy (shared cache, per-layer budgets split evenly, per-layer budgets\n"
    "      sized by each layer's reuse fitted on the trace's first half, and told the next token's\n"
    "      experts by an oracle) and for Belady: hit rate, the misses split into first use / not\n"
    "      kept at the previous use / evicted since (%% of lookups), and the share of cached experts\n"
    "      evicted before a hit\n"
    "  bench_routing soft TRACE [TRACE...] [--sizes P1,...] [--weights W1,...] [--half-lives H1,...]\n"
    "      hit rate %% of lrfu-admit whose scores also gain W x the router's soft scores (top M of\n"
    "      the trace's r lines, scaled to add up to k a token; default weights 0.25,0.5,1,2,4) with a\n"
    "      half-life of H x the capacity (default 16), shared cache and per-layer budgets, against\n"
    "      lru, lrfu, lrfu-admit and Belady (default sizes 10,25,50); first, how often an expert is\n"
    "      chosen again within 1..64 tokens when it is chosen now, a runner-up now, or neither\n"
    "  bench_routing learned TRACE [TRACE...] [--sizes P1,...] [--windows W1,...] [--mlp W1,...] [--hidden H]\n"
    "                        [--follows F] [--online] [--rows N] [--across]\n"
    "      a learned eviction policy: a model of each expert's reuse (decayed use counts, age, gaps\n"
    "      between its last uses, recent uses, popularity share; how often it followed the experts\n"
    "      chosen now within F tokens, default 2; the router's score) fitted as logistic P(used again\n"
    "      within W tokens), linear for each W of --windows (default 2) and by least squares on\n"
    "      log2(tokens to the next use), and as a perceptron of H ReLU units (default 16, 0 = none)\n"
    "      for each target of --mlp (default 2; 0 = log2 next use), each reading its history only,\n"
    "      + follows, and + follows + the router's scores; fitted on the first half of the trace (or,\n"
    "      with --across, on the whole of the first trace of each pair), the variant of each flavor\n"
    "      chosen by its hit rate on that same half, replayed on the second half (the pair's other\n"
    "      trace) beside lru, lrfu, lrfu-admit and Belady, one shared cache (default sizes 10,25,50);\n"
    "      --online counts the follows online, from the replayed text itself so far, in place of\n"
    "      the table fitted on the training segment.\n"
    "      --export (with --online, one trace) fits the + follows variants on the whole trace, keeps\n"
    "      the one with the best hit rate on it at the first of --sizes (default 25), and prints it\n"
    "      as the C++ of the library's shipped weights (lib/experts/eviction_learned_weights.cpp)\n"
    "      --rows caps the training rows (default 1000000, sampled evenly over the tokens). It also\n"
    "      fits every variant on the replayed segment itself and reports the best there: an upper\n"
    "      bound of the features and models, not a policy\n"
    "  bench_routing prefetch TRACE [TRACE...]\n"
    "      precision and recall of each prefetch rule 1..A layers ahead, on the first half of each\n"
    "      trace (fit) and the second (held out); the rule chosen is the one with the highest mean\n"
    "      recall one layer ahead whose precision is at least 85% on the fit half of every trace\n";

[[noreturn]] void usage(const std::string &why) {
    std::fprintf(stderr, "bench_routing: %s\n%s", why.c_str(), kUsage);
    std::exit(2);
}

struct Args {
    std::map<std::string, std::string> values;
    std::vector<std::string> positional;
    bool per_layer = false;
    bool across = false;
    bool online = false;
    bool exported = false;

    Args(int argc, char **argv, int first) {
        for (int i = first; i < argc; ++i) {
            std::string a = argv[i];
            if (a == "--per-layer") {
                per_layer = true;
            } else if (a == "--across") {
                across = true;
            } else if (a == "--online") {
                online = true;
            } else if (a == "--export") {
                exported = true;
            } else if (a.starts_with("-")) {
                if (i + 1 >= argc) usage("option " + a + " needs a value");
                values[a] = argv[++i];
            } else {
                positional.push_back(a);
            }
        }
    }
    std::string get(const std::string &name, const std::string &fallback) const {
        auto it = values.find(name);
        return it == values.end() ? fallback : it->second;
    }
    long integer(const std::string &name, long fallback, long lo, long hi) const {
        auto it = values.find(name);
        if (it == values.end()) return fallback;
        char *end = nullptr;
        const long v = std::strtol(it->second.c_str(), &end, 10);
        if (it->second.empty() || *end || v < lo || v > hi)
            usage(fmt::format("{} must be an integer in {}..{}, not '{}'", name, lo, hi, it->second));
        return v;
    }
    void only(std::initializer_list<const char *> known) const {
        for (const auto &[name, value] : values) {
            bool ok = false;
            for (const char *k : known) ok = ok || name == k;
            if (!ok) usage("unknown option " + name);
        }
    }
};

std::vector<std::string> split(const std::string &s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
    return out;
}

std::string read_text(const std::string &path) {
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f) fail(MST_ERR_IO, "cannot read --text file {}", path);
    std::string text;
    char buf[65536];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
    std::fclose(f);
    return text;
}

int record(const Args &args) {
    args.only({"-m", "--text", "--out", "--ctx", "--predict", "--max-tokens", "-k", "--ranked"});
    if (!args.positional.empty()) usage("record takes no positional arguments");
    const std::string model_path = args.get("-m", ""), text_path = args.get("--text", ""), out = args.get("--out", "");
    if (model_path.empty() || text_path.empty() || out.empty()) usage("record needs -m, --text and --out");
    const long ctx = args.integer("--ctx", 1024, 2, 1 << 20);
    const long ahead = args.integer("--predict", 2, 0, 16);
    const long max_tokens = args.integer("--max-tokens", 0, 0, 1L << 40);
    LoadOptions options;
    options.backend = "cpu";
    const auto model = load_model(model_path, options);
    const long k = args.integer("-k", model->experts_per_token, 1, model->config.n_experts);
    const long ranked = std::min<long>(args.integer("--ranked", 2 * k, 0, model->config.n_experts), model->config.n_experts);
    if (ranked != 0 && ranked <= k) usage(fmt::format("--ranked must be 0 or more than k ({})", k));
    std::vector<int32_t> tokens = model->tokenizer->encode(read_text(text_path), false);
    if (max_tokens > 0 && size_t(max_tokens) < tokens.size()) tokens.resize(size_t(max_tokens));
    if (tokens.empty()) fail(MST_ERR_INVALID_ARGUMENT, "the text {} has no tokens", text_path);

    // Gathered per model layer in token order, laid out into slots once the layers are known.
    std::map<size_t, std::vector<int32_t>> ids;
    std::map<size_t, std::vector<float>> weights;
    std::map<std::pair<size_t, size_t>, std::vector<int32_t>> guesses;  // (source, target) -> [token][k]
    std::map<std::pair<size_t, size_t>, std::vector<float>> guess_weights;
    std::map<size_t, std::vector<int32_t>> ranked_ids;
    std::map<size_t, std::vector<float>> ranked_weights;
    ForwardOptions fo;
    fo.experts_per_token = int32_t(k);
    fo.route_trace.chosen = [&](size_t layer, int64_t n, int32_t kk, const int32_t *i, const float *w) {
        ids[layer].insert(ids[layer].end(), i, i + n * kk);
        weights[layer].insert(weights[layer].end(), w, w + n * kk);
    };
    fo.route_trace.predict_layers = int32_t(ahead);
    fo.route_trace.predicted = [&](size_t source, size_t target, int64_t n, int32_t kk, const int32_t *i,
                                   const float *w) {
        auto &g = guesses[{source, target}];
        g.insert(g.end(), i, i + n * kk);
        auto &gw = guess_weights[{source, target}];
        gw.insert(gw.end(), w, w + n * kk);
    };
    fo.route_trace.ranked_k = int32_t(ranked);
    if (ranked > 0)
        fo.route_trace.ranked = [&](size_t layer, int64_t n, int32_t m, const int32_t *i, const float *w) {
            if (m != ranked) fail(MST_ERR_INTERNAL, "layer {} ranked {} experts, not {}", layer, m, ranked);
            ranked_ids[layer].insert(ranked_ids[layer].end(), i, i + n * m);
            ranked_weights[layer].insert(ranked_weights[layer].end(), w, w + n * m);
        };
    std::vector<float> logits(size_t(model->config.vocab_size));
    ExpertIoStats io;
    for (size_t first = 0; first < tokens.size(); first += size_t(ctx)) {
        const size_t n = std::min(tokens.size() - first, size_t(ctx));
        const auto state = model->model->create_state(int32_t(n));
        model->model->forward(*state, 0, std::span<const int32_t>(tokens.data() + first, n), fo, logits.data(), io);
        std::fprintf(stderr, "\rrecorded %zu / %zu tokens", first + n, tokens.size());
    }
    std::fprintf(stderr, "\n");

    std::vector<int32_t> layers;
    for (const auto &[layer, v] : ids) layers.push_back(int32_t(layer));
    RouteTraceData t = RouteTraceData::sized(model->config.n_experts, int32_t(k), int32_t(ahead),
                                             int64_t(tokens.size()), layers, int32_t(ranked));
    for (size_t s = 0; s < layers.size(); ++s) {
        const std::vector<int32_t> &li = ids[size_t(layers[s])];
        const std::vector<float> &lw = weights[size_t(layers[s])];
        for (int64_t tok = 0; tok < t.n_tokens; ++tok)
            for (long j = 0; j < k; ++j) {
                t.ids[t.at(tok, s) + size_t(j)] = li[size_t(tok * k + j)];
                t.weights[t.at(tok, s) + size_t(j)] = lw[size_t(tok * k + j)];
            }
        if (ranked == 0) continue;
        const std::vector<int32_t> &ri = ranked_ids.at(size_t(layers[s]));
        const std::vector<float> &rw = ranked_weights.at(size_t(layers[s]));
        for (int64_t tok = 0; tok < t.n_tokens; ++tok)
            for (long j = 0; j < ranked; ++j) {
                t.ranked_ids[t.ranked_at(tok, s) + size_t(j)] = ri[size_t(tok * ranked + j)];
                t.ranked_weights[t.ranked_at(tok, s) + size_t(j)] = rw[size_t(tok * ranked + j)];
            }
    }
    for (const auto &[st, g] : guesses) {
        const size_t from = size_t(std::ranges::find(layers, int32_t(st.first)) - layers.begin());
        const size_t to = size_t(std::ranges::find(layers, int32_t(st.second)) - layers.begin());
        const std::vector<float> &gw = guess_weights.at(st);
        for (int64_t tok = 0; tok < t.n_tokens; ++tok)
            for (long j = 0; j < k; ++j) {
                t.guesses[t.guess_at(int32_t(to - from), tok, to) + size_t(j)] = g[size_t(tok * k + j)];
                t.guess_weights[t.guess_at(int32_t(to - from), tok, to) + size_t(j)] = gw[size_t(tok * k + j)];
            }
    }
    write_route_trace(out, t);
    std::printf("wrote %s: %lld tokens, %zu sparse layers, %d experts, top-%ld, guesses up to %ld ahead, top-%ld scores\n",
                out.c_str(), (long long)t.n_tokens, layers.size(), t.n_experts, k, ahead, ranked);
    return 0;
}

void print_cache_table(const RouteTraceData &t, const std::vector<double> &sizes,
                       const std::vector<std::string> &policies, bool per_layer,
                       const std::vector<std::vector<ExpertKey>> *hints) {
    const auto groups = decode_accesses(t);
    const size_t total = size_t(t.n_experts) * t.n_slots();
    std::printf("\n%s cache, hit rate %% (decode order, %zu experts in all, %zu lookups)\n",
                per_layer ? "per-layer" : "shared", total, [&] {
                    size_t n = 0;
                    for (const auto &g : groups) n += g.size();
                    return n;
                }());
    std::printf("| cached %% | experts |");
    for (const auto &p : policies) std::printf(" %s |", p.c_str());
    if (hints)
        for (const auto &p : policies) std::printf(" %s+hints |", p.c_str());
    std::printf(" belady | best - belady |\n|---:|---:|");
    for (size_t i = 0; i <= policies.size() * (hints ? 2 : 1) + 1; ++i) std::printf("---:|");
    std::printf("\n");
    for (double pct : sizes) {
        ReplayOptions o;
        o.capacity = size_t(double(total) * pct / 100.0 + 0.5);
        o.per_layer = per_layer;
        std::printf("| %g | %zu |", pct, o.capacity);
        double best = 0.0;
        for (const auto &p : policies) {
            const double h = replay_policy(groups, p, o).hit_rate();
            best = std::max(best, h);
            std::printf(" %.1f |", 100.0 * h);
        }
        if (hints) {
            ReplayOptions hinted = o;
            hinted.hints = hints;
            for (const auto &p : policies) {
                const double h = replay_policy(groups, p, hinted).hit_rate();
                best = std::max(best, h);
                std::printf(" %.1f |", 100.0 * h);
            }
        }
        const double b = replay_belady(groups, o).hit_rate();
        std::printf(" %.1f | %+.1f |\n", 100.0 * b, 100.0 * (best - b));
    }
}

void print_routing_stats(const RouteTraceData &t) {
    const RoutingStats s = routing_stats(t);
    std::printf("\nper layer: usage entropy (bits, of log2 %d = %.2f), reuse from the previous token, and reuse "
                "distance (share of choices last made N tokens earlier)\n",
                t.n_experts, std::log2(double(t.n_experts)));
    std::printf("| layer | entropy | max share | unused | reuse prev | reuse if independent | d=1 | 2 | 3-4 | 5-8 | "
                "9-16 | 17-64 | >64 | first |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const LayerRoutingStats &l : s.layers) {
        std::printf("| %d | %.3f | %.3f | %d | %.1f%% | %.1f%% |", l.layer, l.entropy_bits, l.max_share, l.unused,
                    100.0 * l.reuse_previous, 100.0 * l.reuse_independent);
        for (double d : l.distance_share) std::printf(" %.1f |", 100.0 * d);
        std::printf("\n");
    }
    std::printf("\nadjacent layers: mutual information of the experts one token chooses in both\n"
                "| from | to | MI bits | H(to) bits |\n|---:|---:|---:|---:|\n");
    for (const LayerPairStats &p : s.pairs)
        std::printf("| %d | %d | %.3f | %.3f |\n", p.from, p.to, p.mutual_info_bits, p.to_entropy_bits);
    if (s.predictions.empty()) return;
    std::printf("\nprefetch guesses (the next layers' routers on the current hidden state) against the router's "
                "choice\n| layers ahead | guessed | chosen | correct | precision | recall |\n|---:|---:|---:|---:|---:|---:|\n");
    for (const PredictionStats &p : s.predictions)
        std::printf("| %d | %llu | %llu | %llu | %.1f%% | %.1f%% |\n", p.ahead, (unsigned long long)p.guessed,
                    (unsigned long long)p.chosen, (unsigned long long)p.correct, 100.0 * p.precision(),
                    100.0 * p.recall());
}

std::vector<double> sizes_of(const Args &args, const char *fallback) {
    std::vector<double> sizes;
    for (const std::string &s : split(args.get("--sizes", fallback))) {
        char *end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || *end || !(v >= 0.0 && v <= 100.0)) usage("--sizes takes percentages 0..100, not '" + s + "'");
        sizes.push_back(v);
    }
    return sizes;
}

std::vector<std::string> policies_of(const Args &args) {
    std::vector<std::string> policies = cache_policy_names();
    if (args.values.count("--policies")) policies = split(args.get("--policies", ""));
    for (const std::string &p : policies)
        if (p != "none") (void)make_eviction_policy(p);  // an unknown name fails here, listing the known ones
    return policies;
}

void print_gap_row(const std::string &name, const ReplayResult &r) {
    const double n = double(r.hits + r.misses) / 100.0;
    std::printf("| %s | %.1f | %.1f | %.1f | %.1f | %llu | %.1f%% |\n", name.c_str(), r.hit_rate() * 100.0,
                double(r.first_use) / n, double(r.not_kept) / n, double(r.evicted) / n,
                (unsigned long long)r.inserted, r.inserted ? 100.0 * double(r.evicted_unused) / double(r.inserted) : 0.0);
}

int gap(const Args &args) {
    args.only({"--sizes", "--policies"});
    if (args.positional.size() != 1) usage("gap takes one trace file");
    const RouteTraceData t = read_route_trace(args.positional[0]);
    const std::vector<double> sizes = sizes_of(args, "10,25,50");
    const std::vector<std::string> policies = policies_of(args);
    const auto groups = decode_accesses(t);
    const auto oracle = next_token_hints(groups, t.n_slots());
    const std::vector<std::vector<ExpertKey>> fit(groups.begin(), groups.begin() + ptrdiff_t(size_t(t.n_tokens / 2) * t.n_slots()));
    const size_t total = size_t(t.n_experts) * t.n_slots();
    std::printf("trace %s: %lld tokens, %zu sparse layers, %d experts, top-%d\n", args.positional[0].c_str(),
                (long long)t.n_tokens, t.n_slots(), t.n_experts, t.k);
    for (double pct : sizes) {
        ReplayOptions shared;
        shared.capacity = size_t(double(total) * pct / 100.0 + 0.5);
        ReplayOptions even = shared;
        even.per_layer = true;
        ReplayOptions sized = shared;
        sized.layer_capacity = reuse_sized_budgets(fit, shared.capacity);
        std::printf("\n%g %% cached (%zu experts); reuse-sized budgets per layer:", pct, shared.capacity);
        for (const auto &[layer, cap] : sized.layer_capacity) std::printf(" %d:%zu", layer, cap);
        std::printf("\n| policy | hit %% | miss: first use | not kept | evicted | cached | evicted before a hit |\n"
                    "|---|---:|---:|---:|---:|---:|---:|\n");
        for (const std::string &p : policies) {
            print_gap_row(p, replay_policy(groups, p, shared));
            print_gap_row(p + ", per layer", replay_policy(groups, p, even));
            print_gap_row(p + ", per layer by reuse", replay_policy(groups, p, sized));
            ReplayOptions told = shared;
            told.hints = &oracle;
            print_gap_row(p + " + next token known", replay_policy(groups, p, told));
        }
        print_gap_row("belady", replay_belady(groups, shared));
        print_gap_row("belady, per layer", replay_belady(groups, even));
        print_gap_row("belady, per layer by reuse", replay_belady(groups, sized));
    }
    return 0;
}

int replay(const Args &args) {
    args.only({"--sizes", "--policies", "--prefetch-hints"});
    if (args.positional.size() != 1) usage("replay takes one trace file");
    const RouteTraceData t = read_route_trace(args.positional[0]);
    const std::vector<double> sizes = sizes_of(args, "5,10,12.5,15,20,25,30,37.5,40,50");
    const std::vector<std::string> policies = policies_of(args);
    std::printf("trace %s: %lld tokens, %zu sparse layers, %d experts, top-%d\n", args.positional[0].c_str(),
                (long long)t.n_tokens, t.n_slots(), t.n_experts, t.k);
    std::optional<std::vector<std::vector<ExpertKey>>> hints;
    if (args.values.count("--prefetch-hints")) {
        const std::string v = args.get("--prefetch-hints", "");
        char *end = nullptr;
        const double share = std::strtod(v.c_str(), &end);
        if (v.empty() || *end || !(share >= 0.0 && share <= 1.0)) usage("--prefetch-hints takes a share 0..1, not '" + v + "'");
        hints = decode_hints(t, PrefetchRule{float(share), float(share), 0});
    }
    print_cache_table(t, sizes, policies, false, hints ? &*hints : nullptr);
    if (args.per_layer) print_cache_table(t, sizes, policies, true, hints ? &*hints : nullptr);
    print_routing_stats(t);
    return 0;
}

std::vector<double> numbers_of(const Args &args, const std::string &name, const char *fallback) {
    std::vector<double> out;
    for (const std::string &s : split(args.get(name, fallback))) {
        char *end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || *end || !(v > 0.0 && v <= 1000.0)) usage(name + " takes numbers above 0, not '" + s + "'");
        out.push_back(v);
    }
    return out;
}

// Whether the router's scores below the top-k say anything about the next tokens: the
// share of (token, layer, expert) whose expert is chosen again at that layer within d
// tokens, by what the router did with it now (chosen, in its top M but not chosen, neither).
void print_runner_up_reuse(const RouteTraceData &t) {
    constexpr int64_t kBins[] = {1, 4, 16, 64};
    const size_t n_experts = size_t(t.n_experts);
    // [category][bin]: chosen again within kBins[bin] tokens; and how many of the category.
    double hits[3][4] = {}, count[3] = {};
    std::vector<int64_t> next(n_experts);
    std::vector<uint8_t> category(n_experts);
    for (size_t s = 0; s < t.n_slots(); ++s) {
        std::fill(next.begin(), next.end(), std::numeric_limits<int64_t>::max());
        for (int64_t tok = t.n_tokens - 1; tok >= 0; --tok) {
            std::fill(category.begin(), category.end(), uint8_t(2));
            for (int32_t j = 0; j < t.ranked; ++j) {
                const int32_t e = t.ranked_ids[t.ranked_at(tok, s) + size_t(j)];
                if (e >= 0) category[size_t(e)] = 1;
            }
            for (int32_t j = 0; j < t.k; ++j) {
                const int32_t e = t.ids[t.at(tok, s) + size_t(j)];
                if (e >= 0) category[size_t(e)] = 0;
            }
            if (tok + kBins[3] < t.n_tokens)  // every window complete
                for (size_t e = 0; e < n_experts; ++e) {
                    count[category[e]] += 1.0;
                    for (size_t b = 0; b < 4; ++b)
                        if (next[e] - tok <= kBins[b]) hits[category[e]][b] += 1.0;
                }
            for (int32_t j = 0; j < t.k; ++j) {
                const int32_t e = t.ids[t.at(tok, s) + size_t(j)];
                if (e >= 0) next[size_t(e)] = tok;
            }
        }
    }
    std::printf("chosen again at the same layer within d tokens, by what the router did with the expert now (%%)\n"
                "| now | share of experts | d<=1 | d<=4 | d<=16 | d<=64 |\n|---|---:|---:|---:|---:|---:|\n");
    const double all = count[0] + count[1] + count[2];
    const char *names[3] = {"chosen (top-k)", "runner-up (top-M, not chosen)", "neither"};
    for (int c = 0; c < 3; ++c) {
        std::printf("| %s | %.1f |", names[c], 100.0 * count[c] / std::max(all, 1.0));
        for (int b = 0; b < 4; ++b) std::printf(" %.1f |", 100.0 * hits[c][b] / std::max(count[c], 1.0));
        std::printf("\n");
    }
}

int soft(const Args &args) {
    args.only({"--sizes", "--weights", "--half-lives"});
    if (args.positional.empty()) usage("soft takes one or more trace files");
    const std::vector<double> sizes = sizes_of(args, "10,25,50");
    const std::vector<double> weights = numbers_of(args, "--weights", "0.25,0.5,1,2,4");
    const std::vector<double> half_lives = numbers_of(args, "--half-lives", "16");
    for (const std::string &path : args.positional) {
        const RouteTraceData t = read_route_trace(path);
        if (t.ranked == 0) fail(MST_ERR_INVALID_ARGUMENT, "{} has no router scores (record it with --ranked)", path);
        const auto groups = decode_accesses(t);
        const RouterScores scores = decode_router_scores(t);
        const size_t total = size_t(t.n_experts) * t.n_slots();
        std::printf("\ntrace %s: %lld tokens, %zu sparse layers, %d experts, top-%d, router's top-%d scored\n",
                    path.c_str(), (long long)t.n_tokens, t.n_slots(), t.n_experts, t.k, t.ranked);
        print_runner_up_reuse(t);
        std::printf("| cached %% | cache | lru | lrfu | lrfu-admit |");
        for (double h : half_lives)
            for (double w : weights) std::printf(" soft w=%g h=%g |", w, h);
        std::printf(" belady | best soft - lrfu-admit | best online - belady |\n|---:|---|---:|---:|---:|");
        for (size_t i = 0; i < half_lives.size() * weights.size() + 3; ++i) std::printf("---:|");
        std::printf("\n");
        for (double pct : sizes)
            for (bool per_layer : {false, true}) {
                ReplayOptions o;
                o.capacity = size_t(double(total) * pct / 100.0 + 0.5);
                o.per_layer = per_layer;
                o.scores = &scores;
                std::printf("| %g | %s |", pct, per_layer ? "per layer" : "shared");
                double best = 0.0, admit = 0.0, best_soft = 0.0;
                for (const char *p : {"lru", "lrfu", "lrfu-admit"}) {
                    const double h = replay_policy(groups, p, o).hit_rate();
                    best = std::max(best, h);
                    admit = h;
                    std::printf(" %.1f |", 100.0 * h);
                }
                for (double hl : half_lives)
                    for (double w : weights) {
                        const double h =
                            replay_policy(groups, PolicyFactory([&] { return make_lrfu_policy(hl, true, w); }), o)
                                .hit_rate();
                        best = std::max(best, h);
                        best_soft = std::max(best_soft, h);
                        std::printf(" %.1f |", 100.0 * h);
                    }
                const double b = replay_belady(groups, o).hit_rate();
                std::printf(" %.1f | %+.1f | %+.1f |\n", 100.0 * b, 100.0 * (best_soft - admit), 100.0 * (best - b));
                std::fflush(stdout);
            }
    }
    return 0;
}

// One side of a learned-policy run: a trace's groups (decode_accesses) and router scores.
struct TraceSegment {
    std::vector<std::vector<ExpertKey>> groups;
    RouterScores scores;
};

// Tokens [first, last) of a trace.
TraceSegment segment(const RouteTraceData &t, int64_t first, int64_t last) {
    const auto groups = decode_accesses(t);
    const RouterScores scores = decode_router_scores(t);
    const auto a = ptrdiff_t(size_t(first) * t.n_slots()), b = ptrdiff_t(size_t(last) * t.n_slots());
    return TraceSegment{{groups.begin() + a, groups.begin() + b}, {scores.begin() + a, scores.begin() + b}};
}

// Fits every variant on `fit`, chooses the history-only and the router-score variant with
// the best hit rate on `fit` itself at each size, and replays them on `eval`: the model never
// sees `eval`, neither its future nor its hit rates.
// What a variant reads beyond its own history: nothing, the experts that followed the current
// ones (ReuseAffinity), or those and the router's scores.
enum class Reads { kHistory, kFollows, kFollowsScores };
constexpr Reads kFlavors[] = {Reads::kHistory, Reads::kFollows, Reads::kFollowsScores};
const char *flavor_name(Reads r) {
    return r == Reads::kHistory ? "history" : r == Reads::kFollows ? "+ follows" : "+ follows + scores";
}

// Every variant (linear and perceptron, each target, each flavor) fitted on `fit`.
struct Variants {
    ReuseTrainingSet set;
    size_t stride = 1;
    std::vector<EvictionModel> models;
    std::vector<Reads> reads;
};
Variants fit_variants(const RouteTraceData &shape, const TraceSegment &fit, const std::vector<double> &windows,
                      const std::vector<double> &mlp_targets, long hidden, long max_rows, long affinity, bool online) {
    Variants v;
    const size_t per_token = shape.n_slots() * size_t(shape.n_experts);
    v.stride = std::max<size_t>(1, (fit.groups.size() / shape.n_slots() * per_token + size_t(max_rows) - 1) / size_t(max_rows));
    std::shared_ptr<const ReuseAffinity> follows;
    if (!online)
        follows = std::make_shared<const ReuseAffinity>(
            fit_reuse_affinity(fit.groups, shape.n_slots(), shape.n_experts, int32_t(affinity)));
    v.set = reuse_training_set(fit.groups, &fit.scores, shape.n_slots(), shape.n_experts, shape.k, v.stride, follows,
                               online ? int32_t(affinity) : 0);
    for (Reads r : kFlavors) {
        const bool scores = r == Reads::kFollowsScores, follow = r != Reads::kHistory;
        for (double w : windows) {
            v.models.push_back(fit_eviction_model(v.set, int32_t(w), scores, follow));
            v.reads.push_back(r);
        }
        v.models.push_back(fit_eviction_model(v.set, 0, scores, follow));
        v.reads.push_back(r);
        for (double w : mlp_targets) {
            if (hidden == 0) break;
            v.models.push_back(fit_eviction_mlp(v.set, int32_t(w), scores, int32_t(hidden), 3, follow));
            v.reads.push_back(r);
        }
    }
    return v;
}

double learned_hit(const std::vector<std::vector<ExpertKey>> &groups, const EvictionModel &m, const ReplayOptions &o) {
    return replay_policy(groups, PolicyFactory([&] { return make_learned_policy(m); }), o).hit_rate();
}

// Fits every variant on `fit`, chooses per flavor the variant with the best hit rate on `fit`
// itself at each size, and replays it on `eval`: the model never sees `eval`, neither its
// future nor its hit rates. The variants are also fitted on `eval` itself and the best of
// them on `eval` reported: not an honest policy, the most these features and models could
// give on that segment.
void learned_run(const std::string &title, const RouteTraceData &shape, const TraceSegment &fit,
                 const TraceSegment &eval, const std::vector<double> &sizes, const std::vector<double> &windows,
                 const std::vector<double> &mlp_targets, long hidden, long max_rows, long affinity, bool online) {
    const size_t total = size_t(shape.n_experts) * shape.n_slots();
    const Variants v = fit_variants(shape, fit, windows, mlp_targets, hidden, max_rows, affinity, online);
    const Variants in_sample = fit_variants(shape, eval, windows, mlp_targets, hidden, max_rows, affinity, online);
    std::printf("\n%s: %zu training rows (every %zu-th token of each layer, every expert); follows = within %ld tokens\n",
                title.c_str(), v.set.rows.size(), v.stride, affinity);
    std::printf("linear models' weights per unit of each feature (the perceptrons' are not shown)\n"
                "| model | reads | positives |");
    for (const std::string &f : reuse_feature_names()) std::printf(" %s |", f.c_str());
    std::printf(" intercept |\n|---|---|---:|");
    for (size_t i = 0; i <= kReuseFeatures; ++i) std::printf("---:|");
    std::printf("\n");
    for (size_t m = 0; m < v.models.size(); ++m) {
        const EvictionModel &model = v.models[m];
        if (model.hidden > 0) continue;
        size_t positives = 0;
        for (uint32_t n : v.set.next) positives += n != 0 && (model.window == 0 || n <= uint32_t(model.window));
        std::printf("| %s | %s | %.1f%% |", model.name().c_str(), flavor_name(v.reads[m]),
                    100.0 * double(positives) / double(std::max<size_t>(v.set.next.size(), 1)));
        // Per unit of the raw feature (the weights act on standardized ones): comparable across traces.
        double intercept = model.weights[kReuseFeatures];
        for (size_t i = 0; i < kReuseFeatures; ++i) {
            const double w = model.scale[i] > 0.0f ? model.weights[i] / model.scale[i] : 0.0;
            intercept -= w * model.mean[i];
            std::printf(" %.3f |", w);
        }
        std::printf(" %.3f |\n", intercept);
    }
    std::printf("\nhit rate %% on the evaluated segment (one shared cache); learned = per flavor, the variant with the "
                "best hit rate on the fitted segment\n| cached %% | lru | lrfu | lrfu-admit |");
    for (Reads r : kFlavors) std::printf(" learned, %s |", flavor_name(r));
    std::printf(" variants chosen (fit hit %%) | bound: fitted on the evaluated segment | belady | best learned - "
                "lrfu-admit | best learned - belady |\n|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|\n");
    std::string every;
    for (double pct : sizes) {
        ReplayOptions o;
        o.capacity = size_t(double(total) * pct / 100.0 + 0.5);
        o.scores = &fit.scores;
        std::vector<size_t> best(std::size(kFlavors), v.models.size());
        std::vector<double> fit_hit(v.models.size()), eval_hit(v.models.size());
        for (size_t m = 0; m < v.models.size(); ++m) {
            fit_hit[m] = learned_hit(fit.groups, v.models[m], o);
            size_t &b = best[size_t(v.reads[m])];
            if (b == v.models.size() || fit_hit[m] > fit_hit[b]) b = m;
        }
        o.scores = &eval.scores;
        std::printf("| %g |", pct);
        double admit = 0.0;
        for (const char *p : {"lru", "lrfu", "lrfu-admit"}) {
            admit = replay_policy(eval.groups, p, o).hit_rate();
            std::printf(" %.1f |", 100.0 * admit);
        }
        for (size_t m = 0; m < v.models.size(); ++m) eval_hit[m] = learned_hit(eval.groups, v.models[m], o);
        double best_learned = 0.0;
        std::string chosen;
        for (size_t b : best) {
            std::printf(" %.1f |", 100.0 * eval_hit[b]);
            best_learned = std::max(best_learned, eval_hit[b]);
            chosen += fmt::format("{}{} ({:.1f})", chosen.empty() ? "" : "; ", v.models[b].name(), 100.0 * fit_hit[b]);
        }
        std::printf(" %s |", chosen.c_str());
        double bound_hit = 0.0;
        for (const EvictionModel &m : in_sample.models) bound_hit = std::max(bound_hit, learned_hit(eval.groups, m, o));
        std::printf(" %.1f |", 100.0 * bound_hit);
        const double b = replay_belady(eval.groups, o).hit_rate();
        std::printf(" %.1f | %+.1f | %+.1f |\n", 100.0 * b, 100.0 * (best_learned - admit), 100.0 * (best_learned - b));
        std::fflush(stdout);
        every += fmt::format("| {:g} |", pct);
        for (size_t m = 0; m < v.models.size(); ++m)
            every += fmt::format(" {:.1f} / {:.1f} |", 100.0 * fit_hit[m], 100.0 * eval_hit[m]);
        every += "\n";
    }
    std::printf("\nevery variant, hit rate %% fitted segment / evaluated segment (not used to choose)\n| cached %% |");
    for (size_t m = 0; m < v.models.size(); ++m) std::printf(" %s, %s |", v.models[m].name().c_str(), flavor_name(v.reads[m]));
    std::printf("\n|---:|");
    for (size_t m = 0; m < v.models.size(); ++m) std::printf("---:|");
    std::printf("\n%s", every.c_str());
    std::fflush(stdout);
}

// `values` as a C++ initializer list, exactly: 9 significant digits round-trip a float
// (suffix f), 17 a double.
template <typename T>
std::string cpp_list(const T &values) {
    constexpr bool single = std::is_same_v<std::remove_cvref_t<decltype(values[0])>, float>;
    std::string out = "{";
    for (size_t i = 0; i < std::size(values); ++i) {
        out += i == 0 ? "\n            " : i % 6 == 0 ? ",\n            " : ", ";
        char buf[64];
        std::snprintf(buf, sizeof buf, single ? "%.9g" : "%.17g", double(values[i]));
        out += buf;
        if (out.find_last_of(".e") == std::string::npos || out.find_last_of(".e") < out.size() - std::strlen(buf))
            out += ".0";  // a whole number: still a floating literal
        if (single) out += "f";
    }
    return out + "}";
}

// The + follows variants (follows counted online) fitted on the whole of `path`, the one
// with the best hit rate on that same trace at `pct` % cached printed as the library's
// shipped weights.
void learned_export(const std::string &command, const std::string &path, double pct, const std::vector<double> &windows,
                    const std::vector<double> &mlp_targets, long hidden, long max_rows, long follows) {
    const RouteTraceData t = read_route_trace(path);
    const TraceSegment whole = segment(t, 0, t.n_tokens);
    const size_t per_token = t.n_slots() * size_t(t.n_experts);
    const size_t stride =
        std::max<size_t>(1, (size_t(t.n_tokens) * per_token + size_t(max_rows) - 1) / size_t(max_rows));
    const ReuseTrainingSet set =
        reuse_training_set(whole.groups, nullptr, t.n_slots(), t.n_experts, t.k, stride, nullptr, int32_t(follows));
    std::vector<EvictionModel> models;
    for (double w : windows) models.push_back(fit_eviction_model(set, int32_t(w), false, true));
    models.push_back(fit_eviction_model(set, 0, false, true));
    for (double w : mlp_targets)
        if (hidden > 0) models.push_back(fit_eviction_mlp(set, int32_t(w), false, int32_t(hidden), 3, true));
    ReplayOptions o;
    o.capacity = size_t(double(size_t(t.n_experts) * t.n_slots()) * pct / 100.0 + 0.5);
    std::string tried;
    size_t best = 0;
    std::vector<double> hit(models.size());
    for (size_t m = 0; m < models.size(); ++m) {
        hit[m] = learned_hit(whole.groups, models[m], o);
        tried += fmt::format("{}{} {:.1f} %", m ? ", " : "", models[m].name(), 100.0 * hit[m]);
        if (hit[m] > hit[best]) best = m;
    }
    const EvictionModel &m = models[best];
    const std::string trace = path.substr(path.find_last_of('/') + 1);
    std::printf("// The weights of the \"learned\" cache policy (shipped_reuse_model): %s over the reuse\n"
                "// features with follows counted online within %ld tokens (kShippedFollowsWindow), fitted on\n"
                "// %zu rows (every %zu-th token of each layer, every expert) of the whole trace %s\n"
                "// (%lld tokens, %d experts, top-%d, %zu sparse layers) by\n//   %s\n"
                "// and chosen by hit rate on that trace at %g %% cached among: %s.\n"
                "// Reproduce: bench/results/learned_policy.sh. Made by that program, not edited by hand.\n",
                m.name().c_str(), follows, set.rows.size(), stride, trace.c_str(), (long long)t.n_tokens, int(t.n_experts),
                int(t.k), t.n_slots(), command.c_str(), pct, tried.c_str());
    std::printf("#include \"experts/reuse_model.h\"\n\nnamespace mst {\n\nconst ReuseModel &shipped_reuse_model() {\n"
                "    static const ReuseModel model = [] {\n        ReuseModel m;\n");
    std::printf("        m.mean = %s;\n", cpp_list(m.mean).c_str());
    std::printf("        m.scale = %s;\n", cpp_list(m.scale).c_str());
    if (m.hidden == 0) {
        std::printf("        m.weights = %s;\n", cpp_list(m.weights).c_str());
    } else {
        std::printf("        m.hidden = %d;\n", int(m.hidden));
        std::printf("        m.layer1 = %s;\n", cpp_list(m.layer1).c_str());
        std::printf("        m.layer2 = %s;\n", cpp_list(m.layer2).c_str());
    }
    std::printf("        return m;\n    }();\n    return model;\n}\n\n}  // namespace mst\n");
}

int learned(const Args &args) {
    args.only({"--sizes", "--windows", "--rows", "--mlp", "--hidden", "--follows"});
    if (args.positional.empty()) usage("learned takes one or more trace files");
    if (args.across && args.positional.size() % 2) usage("learned --across takes traces in pairs");
    const std::vector<double> sizes = sizes_of(args, "10,25,50");
    const std::vector<double> windows = numbers_of(args, "--windows", "2");
    std::vector<double> mlp;
    for (const std::string &v : split(args.get("--mlp", "2"))) mlp.push_back(std::strtod(v.c_str(), nullptr));
    for (double w : windows)
        if (w != std::floor(w) || w > double(kReuseHorizon)) usage(fmt::format("--windows takes whole tokens up to {}", kReuseHorizon));
    for (double w : mlp)
        if (w != std::floor(w) || w < 0 || w > double(kReuseHorizon)) usage(fmt::format("--mlp takes whole tokens up to {}, or 0", kReuseHorizon));
    const long rows = args.integer("--rows", 1000000, 1000, 1L << 30);
    const long hidden = args.integer("--hidden", 16, 0, 256);
    const long affinity = args.integer("--follows", 2, 1, long(kReuseHorizon));
    if (args.exported) {
        if (!args.online || args.across || args.positional.size() != 1) usage("learned --export takes --online and one trace");
        const std::string command = fmt::format("bench_routing learned --export --online --sizes {} --rows {} --follows {} {}",
                                                args.get("--sizes", "25"), rows, affinity, args.positional[0]);
        learned_export(command, args.positional[0], sizes_of(args, "25").front(), windows, mlp, hidden, rows, affinity);
        return 0;
    }
    if (!args.across) {
        for (const std::string &path : args.positional) {
            const RouteTraceData t = read_route_trace(path);
            const int64_t half = t.n_tokens / 2;
            learned_run(fmt::format("trace {} ({} tokens): fitted on tokens 0..{}, replayed on {}..{}", path, t.n_tokens,
                                    half - 1, half, t.n_tokens - 1),
                        t, segment(t, 0, half), segment(t, half, t.n_tokens), sizes, windows, mlp, hidden, rows, affinity, args.online);
        }
        return 0;
    }
    for (size_t i = 0; i < args.positional.size(); i += 2) {
        const RouteTraceData a = read_route_trace(args.positional[i]), b = read_route_trace(args.positional[i + 1]);
        if (a.n_experts != b.n_experts || a.k != b.k || a.layers != b.layers)
            fail(MST_ERR_INVALID_ARGUMENT, "{} and {} are not traces of one model", args.positional[i], args.positional[i + 1]);
        const TraceSegment whole_a = segment(a, 0, a.n_tokens), whole_b = segment(b, 0, b.n_tokens);
        learned_run(fmt::format("fitted on {}, replayed on {}", args.positional[i], args.positional[i + 1]), a, whole_a,
                    whole_b, sizes, windows, mlp, hidden, rows, affinity, args.online);
        learned_run(fmt::format("fitted on {}, replayed on {}", args.positional[i + 1], args.positional[i]), a, whole_b,
                    whole_a, sizes, windows, mlp, hidden, rows, affinity, args.online);
    }
    return 0;
}

// The rules compared: every top-m cap, and confidence bars with and without a lower bar
// for the previous token's experts.
std::vector<PrefetchRule> candidate_rules(int32_t k) {
    std::vector<PrefetchRule> rules;
    for (int32_t m = k; m >= 1; --m) rules.push_back(PrefetchRule{0.0f, 0.0f, m});
    for (float share : {0.06f, 0.08f, 0.10f, 0.12f, 0.14f, 0.16f, 0.18f, 0.20f, 0.25f, 0.30f})
        for (float reuse : {1.0f, 0.75f, 0.5f, 0.25f, 0.0f})
            rules.push_back(PrefetchRule{share, share * reuse, 0});
    return rules;
}

std::string rule_name(const PrefetchRule &r) {
    if (r.min_share == 0.0f) return r.max_experts ? fmt::format("top-{}", r.max_experts) : "all";
    if (r.reuse_min_share == r.min_share) return fmt::format("share>={:g}", r.min_share);
    return fmt::format("share>={:g}, reused>={:g}", r.min_share, r.reuse_min_share);
}

int prefetch(const Args &args) {
    args.only({});
    if (args.positional.empty()) usage("prefetch takes one or more trace files");
    std::vector<RouteTraceData> traces;
    for (const std::string &p : args.positional) traces.push_back(read_route_trace(p));
    int32_t k = 0, ahead = 16;
    for (const RouteTraceData &t : traces) {
        k = std::max(k, t.k);
        ahead = std::min(ahead, t.predict_ahead);
    }
    if (ahead < 1) usage("the traces hold no guesses (record them with --predict 1 or more)");
    constexpr double kPrecisionBar = 0.85;
    const std::vector<PrefetchRule> rules = candidate_rules(k);
    // [rule][trace][ahead - 1]: fit half, held-out half
    std::vector<std::vector<std::vector<std::pair<PredictionStats, PredictionStats>>>> results(rules.size());
    for (size_t r = 0; r < rules.size(); ++r)
        for (const RouteTraceData &t : traces) {
            auto &per_ahead = results[r].emplace_back();
            const int64_t half = t.n_tokens / 2;
            for (int32_t a = 1; a <= ahead; ++a)
                per_ahead.emplace_back(prediction_stats(t, a, rules[r], 0, half),
                                       prediction_stats(t, a, rules[r], half, t.n_tokens));
        }
    std::printf("prefetch rules: precision / recall %% on the held-out half (second half of each trace)\n| rule |");
    for (size_t i = 0; i < traces.size(); ++i)
        for (int32_t a = 1; a <= ahead; ++a) std::printf(" %s %d ahead |", args.positional[i].c_str(), a);
    std::printf("\n|---|");
    for (size_t i = 0; i < traces.size() * size_t(ahead); ++i) std::printf("---:|");
    std::printf("\n");
    size_t best = rules.size();
    double best_recall = -1.0;
    for (size_t r = 0; r < rules.size(); ++r) {
        std::printf("| %s |", rule_name(rules[r]).c_str());
        bool meets = true;
        double recall = 0.0;
        for (size_t i = 0; i < traces.size(); ++i) {
            for (int32_t a = 1; a <= ahead; ++a) {
                const PredictionStats &held = results[r][i][size_t(a - 1)].second;
                std::printf(" %.1f / %.1f |", 100.0 * held.precision(), 100.0 * held.recall());
            }
            const PredictionStats &fit = results[r][i][0].first;
            meets = meets && fit.precision() >= kPrecisionBar;
            recall += fit.recall() / double(traces.size());
        }
        std::printf("\n");
        if (meets && recall > best_recall) {
            best = r;
            best_recall = recall;
        }
    }
    if (best == rules.size()) {
        std::printf("\nno rule reaches %.0f%% precision one layer ahead on the fit half of every trace\n", 100.0 * kPrecisionBar);
        return 0;
    }
    std::printf("\nchosen (highest mean recall one layer ahead with precision >= %.0f%% on every fit half): %s\n",
                100.0 * kPrecisionBar, rule_name(rules[best]).c_str());
    std::printf("| trace | ahead | fit precision | fit recall | held-out precision | held-out recall |\n"
                "|---|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < traces.size(); ++i)
        for (int32_t a = 1; a <= ahead; ++a) {
            const auto &[fit, held] = results[best][i][size_t(a - 1)];
            std::printf("| %s | %d | %.1f%% | %.1f%% | %.1f%% | %.1f%% |\n", args.positional[i].c_str(), a,
                        100.0 * fit.precision(), 100.0 * fit.recall(), 100.0 * held.precision(), 100.0 * held.recall());
        }
    return 0;
}

}  // namespace
}  // namespace mst

int main(int argc, char **argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::printf("%s", mst::kUsage);
        return argc < 2 ? 2 : 0;
    }
    const std::string mode = argv[1];
    const mst::Args args(argc, argv, 2);
    try {
        if (mode == "record") return mst::record(args);
        if (mode == "replay") return mst::replay(args);
        if (mode == "prefetch") return mst::prefetch(args);
        if (mode == "gap") return mst::gap(args);
        if (mode == "soft") return mst::soft(args);
        if (mode == "learned") return mst::learned(args);
        mst::usage("unknown mode '" + mode + "' (record, replay, gap, soft, learned or prefetch)");
    } catch (const mst::Error &e) {
        std::fprintf(stderr, "bench_routing: %s\n", e.what());
        return 1;
    }
}
