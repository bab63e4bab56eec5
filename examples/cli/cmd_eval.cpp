// `moestream eval`: what an expert budget costs. Perplexity of a text, and against a
// reference (the same model at its full budget, or another model file) the mean and
// 99th-percentile KL divergence and top-1 agreement per token, with tokens/s and expert
// bytes read per token, one line per budget setting.
#include <cstdio>
#include <fstream>
#include <memory>
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
#include "session/quality_metrics.h"

namespace mst::cli {
namespace {

const char *const kEvalHelp =
    "usage: moestream eval -m PATH --text FILE [budget options] [--reference PATH] [--sweep K1,K2,...]\n"
    "Measure perplexity, and KL divergence / top-1 agreement against a reference, per expert budget.\n"
    "  --text FILE               the text to score (UTF-8)\n"
    "  --ctx N                   tokens per evaluation window (default 256)\n"
    "  --max-tokens N            score at most N tokens of the text (default: all)\n"
    "  --min-weight W            budget: drop experts whose normalised weight is below W\n"
    "  --mass P                  budget: keep the fewest experts whose weights reach P\n"
    "  --cache-skip W            budget: skip experts not in memory with normalised weight below W\n"
    "  --reference PATH          reference model (default: this model at its full budget)\n"
    "  --sweep K1,K2,...         one line per experts-per-token value\n"
    "  --json FILE               also write the results as JSON\n"
    "  (--experts-per-token K sets the budget of the single setting when there is no --sweep)\n";

struct Setting {
    std::string label;
    mst_expert_budget budget;
    QualityAccumulator quality;
    double seconds = 0.0;
    uint64_t tokens = 0;
    uint64_t expert_bytes = 0;
    uint64_t chosen = 0, skipped = 0;
    double skipped_mass = 0.0;
};

std::vector<int32_t> parse_list(const std::string &text) {
    std::vector<int32_t> out;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');) {
        try {
            out.push_back(int32_t(std::stoi(item)));
        } catch (const std::exception &) {
            throw UsageError("--sweep needs comma-separated integers, got '" + text + "'");
        }
    }
    return out;
}

std::string read_text(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UsageError("cannot read --text file '" + path + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<float> all_logits(SessionHandle &session) {
    const float *data = nullptr;
    size_t rows = 0, vocab = 0;
    check(mst_session_all_logits(session.get(), &data, &rows, &vocab));
    return std::vector<float>(data, data + rows * vocab);
}

}  // namespace

int cmd_eval(const std::vector<std::string> &argv) {
    std::vector<std::string> flags = model_option_flags();
    flags.push_back("help");
    const Args args(argv, flags, {{"-m", "--model"}, {"-h", "--help"}});
    if (args.flag("help")) {
        fmt::print("{}{}", kEvalHelp, kModelOptionsHelp);
        return 0;
    }
    std::vector<std::string> known = model_option_names();
    known.insert(known.end(), {"text", "ctx", "max-tokens", "min-weight", "mass", "cache-skip", "reference", "sweep",
                               "json", "help"});
    args.reject_unknown(known);

    std::string backend, storage, cache_policy;
    mst_model_params params = model_params_from(args, backend, storage, cache_policy);
    const int32_t single_k = params.experts_per_token;
    params.experts_per_token = 0;  // the model loads at its own top-k; settings lower it per session
    const ModelHandle model(args.require("model"), params);
    std::unique_ptr<ModelHandle> reference_model;
    if (auto ref = args.get("reference")) reference_model = std::make_unique<ModelHandle>(*ref, params);
    const ModelHandle &reference = reference_model ? *reference_model : model;

    std::vector<Setting> settings;
    auto add_setting = [&](int32_t k) {
        Setting s;
        mst_expert_budget_default(&s.budget);
        s.budget.experts_per_token = k;
        s.budget.min_weight = float(args.float_or("min-weight", 0.0));
        s.budget.mass = float(args.float_or("mass", 1.0));
        s.budget.cache_skip_below = float(args.float_or("cache-skip", 0.0));
        s.label = fmt::format("k={}", k ? k : model.info().model_experts_per_token);
        if (s.budget.min_weight > 0) s.label += fmt::format(" min-w={}", s.budget.min_weight);
        if (s.budget.mass < 1) s.label += fmt::format(" mass={}", s.budget.mass);
        if (s.budget.cache_skip_below > 0) s.label += fmt::format(" cache-skip={}", s.budget.cache_skip_below);
        settings.push_back(std::move(s));
    };
    if (auto sweep = args.get("sweep")) {
        for (int32_t k : parse_list(*sweep)) add_setting(k);
    } else {
        add_setting(single_k);
    }

    std::vector<int32_t> tokens = model.tokenize(read_text(args.require("text")));
    const int64_t limit = args.int_or("max-tokens", 0);
    if (limit > 0 && size_t(limit) < tokens.size()) tokens.resize(size_t(limit));
    const int64_t window = args.int_or("ctx", 256);
    if (window < 2) throw UsageError("--ctx must be at least 2");
    if (tokens.size() < 2) throw UsageError("the text must be at least two tokens long");

    mst_session_params sp = session_params();
    sp.all_logits = 1;
    sp.n_ctx = uint32_t(window);
    SessionHandle ref_session(reference, sp);
    std::vector<std::unique_ptr<SessionHandle>> sessions;
    for (Setting &s : settings) {
        sessions.push_back(std::make_unique<SessionHandle>(model, sp));
        check(mst_session_set_expert_budget(sessions.back()->get(), &s.budget));
    }

    const int32_t vocab = model.info().n_vocab;
    for (size_t first = 0; first + 1 < tokens.size(); first += size_t(window)) {
        const std::vector<int32_t> chunk(tokens.begin() + ptrdiff_t(first),
                                         tokens.begin() + ptrdiff_t(std::min(tokens.size(), first + size_t(window))));
        ref_session.reset();
        ref_session.eval(chunk);
        const std::vector<float> ref_logits = all_logits(ref_session);
        for (size_t i = 0; i < settings.size(); ++i) {
            Setting &s = settings[i];
            SessionHandle &session = *sessions[i];
            const mst_session_stats before = session.stats();
            session.reset();
            session.eval(chunk);
            const mst_session_stats after = session.stats();
            s.seconds += after.prompt_seconds - before.prompt_seconds;
            s.tokens += chunk.size();
            s.expert_bytes += after.expert_bytes_read - before.expert_bytes_read;
            s.chosen = after.experts_chosen;
            s.skipped = after.experts_skipped;
            s.skipped_mass = after.skipped_weight_mass;
            const std::vector<float> logits = all_logits(session);
            for (size_t t = 0; t + 1 < chunk.size(); ++t) {
                const std::span<const float> row(logits.data() + t * size_t(vocab), size_t(vocab));
                const std::span<const float> ref_row(ref_logits.data() + t * size_t(vocab), size_t(vocab));
                s.quality.add_nll(negative_log_likelihood(row, chunk[t + 1]));
                s.quality.add_comparison(kl_divergence(ref_row, row), argmax(ref_row) == argmax(row));
            }
        }
    }

    fmt::print("{:<28} {:>10} {:>10} {:>10} {:>7} {:>9} {:>13} {:>8}\n", "budget", "perplexity", "KL mean",
               "KL p99", "top-1", "tok/s", "experts/tok", "skipped");
    nlohmann::json results = nlohmann::json::array();
    for (const Setting &s : settings) {
        const double tok_s = s.seconds > 0 ? double(s.tokens) / s.seconds : 0.0;
        const double skipped = s.chosen ? double(s.skipped) / double(s.chosen) : 0.0;
        fmt::print("{:<28} {:>10.4f} {:>10.6f} {:>10.6f} {:>6.1f}% {:>9.1f} {:>13} {:>7.1f}%\n", s.label,
                   s.quality.perplexity(), s.quality.mean_kl(), s.quality.kl_percentile(0.99),
                   100.0 * s.quality.top1_agreement(), tok_s, bytes_str(s.tokens ? s.expert_bytes / s.tokens : 0),
                   100.0 * skipped);
        results.push_back({{"budget", s.label}, {"experts_per_token", s.budget.experts_per_token},
                           {"min_weight", s.budget.min_weight}, {"mass", s.budget.mass},
                           {"cache_skip_below", s.budget.cache_skip_below}, {"tokens_scored", s.quality.n_tokens()},
                           {"perplexity", s.quality.perplexity()}, {"mean_nll", s.quality.mean_nll()},
                           {"kl_mean", s.quality.mean_kl()}, {"kl_p99", s.quality.kl_percentile(0.99)},
                           {"top1_agreement", s.quality.top1_agreement()}, {"tokens_per_second", tok_s},
                           {"expert_bytes_per_token", s.tokens ? double(s.expert_bytes) / double(s.tokens) : 0.0},
                           {"experts_skipped_fraction", skipped}, {"skipped_weight_mass", s.skipped_mass}});
    }
    if (auto path = args.get("json")) {
        std::ofstream out(*path);
        out << nlohmann::json{{"model", args.require("model")}, {"tokens", tokens.size()}, {"window", window},
                              {"results", results}}
                   .dump(2);
        if (!out) throw UsageError("cannot write --json file '" + *path + "'");
    }
    return 0;
}

}  // namespace mst::cli
