// `moestream eval`: what an expert budget costs. Perplexity of a text, and against a
// reference (the same model at its full budget, or another model file) the mean and
// 99th-percentile KL divergence and top-1 agreement per token, with tokens/s and expert
// bytes read per token, one line per budget setting.
#include <algorithm>
#include <cstdio>
#include <limits>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "budget_options.h"
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
    "  -c, --ctx N               tokens per evaluation window, at least 2 (default 256)\n"
    "  -n, --max-tokens N        score at most N tokens of the text (default 0: all)\n"
    "  --reference PATH          reference model (default: this model at its full budget)\n"
    "  --sweep K1,K2,...         one line per experts-per-token value (0 = the model's own)\n"
    "  --json FILE               also write the results as JSON\n"
    "  --decode-order            run each window token by token, as decoding does, each setting on a model\n"
    "                            of its own (its own expert cache), so that rules that depend on what is in\n"
    "                            memory (--cache-skip, --cache-substitute) act as they do while generating;\n"
    "                            the speed columns are then decode t/s and expert bytes read per token\n"
    "  (--experts-per-token K sets the budget of the single setting when there is no --sweep)\n"
    "The quality columns come from one pass in which each budget and the reference see each window\n"
    "in turn. The speed columns (prefill t/s, experts/tok) come from a second pass per budget, on the\n"
    "model loaded afresh: its expert cache starts empty and holds only that budget's experts, not\n"
    "those the reference or another budget read (the OS page cache may still hold the files).\n";

struct Setting {
    std::string label;
    mst_expert_budget budget;
    QualityAccumulator quality;
    double seconds = 0.0;  // the speed pass's prefill time
    uint64_t tokens = 0;
    uint64_t expert_bytes = 0;
    uint64_t chosen = 0, skipped = 0, substituted = 0;
    double skipped_mass = 0.0;
};

// The text in windows of `window` tokens (the last one shorter).
std::vector<std::vector<int32_t>> windows_of(const std::vector<int32_t> &tokens, size_t window) {
    std::vector<std::vector<int32_t>> out;
    for (size_t first = 0; first + 1 < tokens.size(); first += window)
        out.emplace_back(tokens.begin() + ptrdiff_t(first),
                         tokens.begin() + ptrdiff_t(std::min(tokens.size(), first + window)));
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

// Evaluates one window from a fresh context: as one prompt, or token by token (decode order).
// Returns the logits of every position when `keep_logits` (the session keeps all logits).
std::vector<float> eval_window(SessionHandle &session, const std::vector<int32_t> &chunk, bool decode_order,
                               bool keep_logits) {
    session.reset();
    if (!decode_order) {
        session.eval(chunk);
        return keep_logits ? all_logits(session) : std::vector<float>{};
    }
    std::vector<float> out;
    for (int32_t token : chunk) {
        session.eval({token});
        if (!keep_logits) continue;
        const std::vector<float> row = session.logits();
        out.insert(out.end(), row.begin(), row.end());
    }
    return out;
}

}  // namespace

int cmd_eval(const std::vector<std::string> &argv) {
    std::vector<std::string> flags = model_option_flags();
    flags.push_back("help");
    flags.push_back("decode-order");
    std::map<std::string, std::string> aliases = model_option_aliases();
    aliases.insert({{"-c", "--ctx"}, {"-n", "--max-tokens"}});
    const Args args(argv, flags, aliases);
    if (args.flag("help")) {
        fmt::print("{}{}model options:\n{}", kEvalHelp, kBudgetOptionsHelp, kModelOptionsHelp);
        return 0;
    }
    std::vector<std::string> known = model_option_names();
    known.insert(known.end(), {"text", "ctx", "max-tokens", "reference", "sweep", "json", "help", "decode-order"});
    for (const std::string &name : budget_option_names()) known.push_back(name);
    args.reject_unknown(known);
    args.reject_positional();
    constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

    std::string backend, storage, cache_policy;
    mst_model_params params = model_params_from(args, backend, storage, cache_policy);
    const int32_t single_k = params.experts_per_token;
    params.experts_per_token = 0;  // the model loads at its own top-k; settings lower it per session
    const std::vector<int64_t> sweep = args.int_list("sweep", 0, kInt32Max);
    const int64_t limit = args.int_in("max-tokens", 0, 0, std::numeric_limits<int64_t>::max());
    const int64_t window = args.int_in("ctx", 256, 2, kInt32Max);
    const bool decode_order = args.flag("decode-order");
    std::vector<Setting> settings;
    auto add_setting = [&](int32_t k) {
        Setting s;
        s.budget = budget_from(args, k);
        settings.push_back(std::move(s));
    };
    if (sweep.empty()) add_setting(single_k);
    for (int64_t k : sweep) add_setting(int32_t(k));
    const std::string model_path = args.require("model");
    const std::string text = read_text(args.require("text"));

    std::vector<int32_t> tokens;
    mst_session_params sp = session_params();
    sp.all_logits = 1;
    sp.n_ctx = uint32_t(window);
    {  // the quality pass; its models are freed before the speed pass loads its own
        const ModelHandle model(model_path, params);
        std::unique_ptr<ModelHandle> reference_model;
        if (auto ref = args.get("reference")) reference_model = std::make_unique<ModelHandle>(*ref, params);
        const ModelHandle &reference = reference_model ? *reference_model : model;
        for (Setting &s : settings) {
            const int32_t k = s.budget.experts_per_token;
            s.label = fmt::format("k={}", k ? k : model.info().model_experts_per_token) + budget_rules_str(s.budget);
        }

        tokens = model.tokenize(text);
        if (limit > 0 && size_t(limit) < tokens.size()) tokens.resize(size_t(limit));
        if (tokens.size() < 2) throw UsageError("the text must be at least two tokens long");

        SessionHandle ref_session(reference, sp);
        // In decode order each setting has a model of its own: its expert cache holds what it read.
        std::vector<std::unique_ptr<ModelHandle>> own_models;
        std::vector<std::unique_ptr<SessionHandle>> sessions;
        for (Setting &s : settings) {
            if (decode_order) own_models.push_back(std::make_unique<ModelHandle>(model_path, params));
            sessions.push_back(std::make_unique<SessionHandle>(decode_order ? *own_models.back() : model, sp));
            check(mst_session_set_expert_budget(sessions.back()->get(), &s.budget));
        }
        const int32_t vocab = model.info().n_vocab;
        for (const std::vector<int32_t> &chunk : windows_of(tokens, size_t(window))) {
            // The reference's logits do not depend on the order (no rule reads the cache).
            const std::vector<float> ref_logits = eval_window(ref_session, chunk, false, true);
            for (size_t i = 0; i < settings.size(); ++i) {
                Setting &s = settings[i];
                SessionHandle &session = *sessions[i];
                const std::vector<float> logits = eval_window(session, chunk, decode_order, true);
                const mst_session_stats after = session.stats();
                s.chosen = after.experts_chosen;
                s.skipped = after.experts_skipped;
                s.substituted = after.experts_substituted;
                s.skipped_mass = after.skipped_weight_mass;
                for (size_t t = 0; t + 1 < chunk.size(); ++t) {
                    const std::span<const float> row(logits.data() + t * size_t(vocab), size_t(vocab));
                    const std::span<const float> ref_row(ref_logits.data() + t * size_t(vocab), size_t(vocab));
                    s.quality.add_nll(negative_log_likelihood(row, chunk[t + 1]));
                    s.quality.add_comparison(kl_divergence(ref_row, row), argmax(ref_row) == argmax(row));
                }
            }
        }
    }
    // The speed pass: each budget alone on a model of its own, so that its expert cache
    // holds only what this budget read.
    mst_session_params speed_sp = sp;
    speed_sp.all_logits = 0;
    for (Setting &s : settings) {
        const ModelHandle model(model_path, params);
        SessionHandle session(model, speed_sp);
        check(mst_session_set_expert_budget(session.get(), &s.budget));
        for (const std::vector<int32_t> &chunk : windows_of(tokens, size_t(window))) {
            (void)eval_window(session, chunk, decode_order, false);
            s.tokens += chunk.size();
        }
        const mst_session_stats st = session.stats();
        // Windows have at least two tokens: each is a prompt, unless run token by token.
        s.seconds = decode_order ? st.decode_seconds : st.prompt_seconds;
        s.expert_bytes = st.expert_bytes_read;
    }

    fmt::print("{:<28} {:>10} {:>10} {:>10} {:>7} {:>11} {:>13} {:>8} {:>8}\n", "budget", "perplexity", "KL mean",
               "KL p99", "top-1", decode_order ? "decode t/s" : "prefill t/s", "experts/tok", "skipped", "substit.");
    nlohmann::json results = nlohmann::json::array();
    for (const Setting &s : settings) {
        const double tok_s = s.seconds > 0 ? double(s.tokens) / s.seconds : 0.0;
        const double skipped = s.chosen ? double(s.skipped) / double(s.chosen) : 0.0;
        const double substituted = s.chosen ? double(s.substituted) / double(s.chosen) : 0.0;
        fmt::print("{:<28} {:>10.4f} {:>10.6f} {:>10.6f} {:>6.1f}% {:>11.1f} {:>13} {:>7.1f}% {:>7.1f}%\n", s.label,
                   s.quality.perplexity(), s.quality.mean_kl(), s.quality.kl_percentile(0.99),
                   100.0 * s.quality.top1_agreement(), tok_s, bytes_str(s.tokens ? s.expert_bytes / s.tokens : 0),
                   100.0 * skipped, 100.0 * substituted);
        results.push_back({{"budget", s.label}, {"experts_per_token", s.budget.experts_per_token},
                           {"min_weight", s.budget.min_weight}, {"mass", s.budget.mass},
                           {"cache_skip_below", s.budget.cache_skip_below}, {"tokens_scored", s.quality.n_tokens()},
                           {"perplexity", s.quality.perplexity()}, {"mean_nll", s.quality.mean_nll()},
                           {"kl_mean", s.quality.mean_kl()}, {"kl_p99", s.quality.kl_percentile(0.99)},
                           {"top1_agreement", s.quality.top1_agreement()}, {"tokens_per_second", tok_s},
                           {"expert_bytes_per_token", s.tokens ? double(s.expert_bytes) / double(s.tokens) : 0.0},
                           {"experts_skipped_fraction", skipped}, {"skipped_weight_mass", s.skipped_mass},
                           {"cache_substitute", s.budget.cache_substitute},
                           {"experts_substituted_fraction", substituted}, {"decode_order", decode_order}});
    }
    fmt::print("{} and experts/tok: the text evaluated in windows of {} tokens{} by each budget alone, on the\n"
               "model loaded afresh (an empty expert cache; the OS page cache may hold the model's files)\n",
               decode_order ? "decode t/s" : "prefill t/s", window, decode_order ? ", token by token," : "");
    if (auto path = args.get("json")) {
        std::ofstream out(*path);
        out << nlohmann::json{{"model", model_path}, {"tokens", tokens.size()}, {"window", window},
                              {"speed", decode_order ? "decode of the text token by token in windows, each budget alone on a freshly loaded model" : "prefill of the text in windows, each budget alone on a freshly loaded model"},
                              {"results", results}}
                   .dump(2);
        if (!out) throw UsageError("cannot write --json file '" + *path + "'");
    }
    return 0;
}

}  // namespace mst::cli
