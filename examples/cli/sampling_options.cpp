#include "sampling_options.h"

#include <cstdint>
#include <cstdio>
#include <limits>

#include <fmt/format.h>

#include "budget_options.h"
#include "commands.h"
#include "model_options.h"

namespace mst::cli {

const char *const kSamplingOptionsHelp =
    "  --temp T                  temperature, 0..100; 0 = greedy (default 0.8)\n"
    "  --top-k K                 keep the K most likely tokens; 0 = off (default 40)\n"
    "  --top-p P                 nucleus sampling mass, 0..1; 1 = off (default 0.95)\n"
    "  --min-p P                 drop tokens below P x the top probability, 0..1; 0 = off (default 0.05)\n"
    "  --repeat-penalty R        penalise recent tokens, above 0; 1 = off (default 1)\n"
    "  --repeat-last-n N         how many recent tokens the penalty sees (default 64)\n";

std::vector<std::string> sampling_option_names() {
    return {"temp", "top-k", "top-p", "min-p", "repeat-penalty", "repeat-last-n"};
}

void sampler_params_from(const Args &args, mst_sampler_params &sampler) {
    constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
    sampler.temperature = float(args.float_in("temp", sampler.temperature, 0.0, 100.0));
    sampler.top_k = int32_t(args.int_in("top-k", sampler.top_k, 0, kInt32Max));
    sampler.top_p = float(args.float_in("top-p", sampler.top_p, 0.0, 1.0));
    sampler.min_p = float(args.float_in("min-p", sampler.min_p, 0.0, 1.0));
    sampler.repetition_penalty = float(args.float_in("repeat-penalty", sampler.repetition_penalty, 0.0, 100.0));
    if (sampler.repetition_penalty <= 0) throw UsageError("option --repeat-penalty must be above 0");
    sampler.repetition_last_n = int32_t(args.int_in("repeat-last-n", sampler.repetition_last_n, 0, kInt32Max));
}

std::map<std::string, std::string> generation_option_aliases() {
    return {{"-n", "--max-tokens"}, {"--n-predict", "--max-tokens"}, {"-s", "--seed"}, {"-c", "--ctx"},
            {"--ctx-size", "--ctx"}, {"-b", "--batch"}, {"--batch-size", "--batch"}};
}

mst_session_params session_params_from(const Args &args) {
    mst_session_params sp = session_params();
    sp.n_ctx = uint32_t(args.int_in("ctx", 0, 0, std::numeric_limits<int32_t>::max()));
    sp.seed = uint64_t(args.int_in("seed", 24301, 0, std::numeric_limits<int64_t>::max()));
    sp.n_batch = uint32_t(args.int_in("batch", 512, 1, 65536));
    return sp;
}

std::optional<Args> generation_command_args(const std::vector<std::string> &argv, const char *help,
                                            const std::vector<std::string> &own_flags,
                                            const std::vector<std::string> &own_options,
                                            const std::map<std::string, std::string> &own_aliases) {
    std::vector<std::string> flags = model_option_flags();
    flags.insert(flags.end(), {"ignore-eos", "help"});
    flags.insert(flags.end(), own_flags.begin(), own_flags.end());
    std::map<std::string, std::string> aliases = model_option_aliases();
    aliases.insert(own_aliases.begin(), own_aliases.end());
    aliases.merge(generation_option_aliases());
    Args args(argv, flags, aliases);
    if (args.flag("help")) {
        fmt::print("{}sampling:\n{}{}model options:\n{}", help, kSamplingOptionsHelp, kBudgetOptionsHelp, kModelOptionsHelp);
        return std::nullopt;
    }
    std::vector<std::string> known = model_option_names();
    known.insert(known.end(), own_options.begin(), own_options.end());
    known.insert(known.end(), {"max-tokens", "seed", "ignore-eos", "ctx", "batch", "help"});
    for (const std::string &name : budget_option_names()) known.push_back(name);
    for (const std::string &name : sampling_option_names()) known.push_back(name);
    args.reject_unknown(known);
    args.reject_positional();
    return args;
}

mst_generate_params generate_params_from(const Args &args, int64_t default_max_tokens) {
    constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
    mst_generate_params gp = generate_params();
    const int64_t max_tokens = args.int_in("max-tokens", default_max_tokens, -1, kInt32Max);
    gp.max_tokens = max_tokens < 0 ? int32_t(kInt32Max) : int32_t(max_tokens);  // a full context stops it first
    sampler_params_from(args, gp.sampler);
    gp.ignore_eos = args.flag("ignore-eos") ? 1 : 0;
    return gp;
}

}  // namespace mst::cli
