// The sampling options `run` and `chat` share: their help lines, their names, and how they
// fill mst_sampler_params, so the two commands cannot drift apart.
#pragma once

#include <string>
#include <vector>

#include "cli_args.h"
#include "moestream.h"

namespace mst::cli {

extern const char *const kSamplingOptionsHelp;

// The long names of the options above, for Args::reject_unknown.
std::vector<std::string> sampling_option_names();

// Reads --temp, --top-k, --top-p, --min-p, --repeat-penalty and --repeat-last-n into
// `sampler` (its defaults stay where an option is absent); out of range is a UsageError.
void sampler_params_from(const Args &args, mst_sampler_params &sampler);

}  // namespace mst::cli
