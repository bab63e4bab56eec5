// Reads the model-loading options every subcommand shares.
#pragma once

#include <vector>
#include <string>

#include "cli_args.h"
#include "moestream.h"

namespace mst::cli {

// Option names understood by model_params_from(), for Args::reject_unknown.
std::vector<std::string> model_option_names();
// The params (backend, storage strings point into `args`, which must outlive them).
mst_model_params model_params_from(const Args &args, std::string &backend, std::string &storage,
                                   std::string &cache_policy);
// Flags (options without a value) among the model options.
inline std::vector<std::string> model_option_flags() { return {"prefetch", "rope-bf16", "no-verify"}; }

}  // namespace mst::cli
