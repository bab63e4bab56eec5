// Reads the model-loading options every subcommand shares.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cli_args.h"
#include "moestream.h"

namespace mst::cli {

// -m, -t (as llama.cpp names --threads) and -h.
std::map<std::string, std::string> model_option_aliases();
// Option names understood by model_params_from(), for Args::reject_unknown.
std::vector<std::string> model_option_names();
// The params (their strings point into `args` and the given strings, which must outlive them).
mst_model_params model_params_from(const Args &args, std::string &backend, std::string &storage,
                                   std::string &cache_policy);
// Flags (options without a value) among the model options.
inline std::vector<std::string> model_option_flags() { return {"prefetch", "rope-bf16", "no-verify"}; }

}  // namespace mst::cli
