// The generation options `run` and `chat` share: the sampler's (help lines, names, how they
// fill mst_sampler_params) and the session's (--ctx, --seed, --batch and their llama.cpp
// aliases), so the two commands cannot drift apart.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli_args.h"
#include "moestream.hpp"

namespace mst::cli {

extern const char *const kSamplingOptionsHelp;

// The long names of the options above, for Args::reject_unknown.
std::vector<std::string> sampling_option_names();

// Reads --temp, --top-k, --top-p, --min-p, --repeat-penalty and --repeat-last-n into
// `sampler` (its defaults stay where an option is absent); out of range is a UsageError.
void sampler_params_from(const Args &args, mst_sampler_params &sampler);

// llama.cpp's short and long names of the options both commands take (-n, -s, -c, -b, ...).
std::map<std::string, std::string> generation_option_aliases();

// Reads --ctx, --seed and --batch into a session's parameters.
mst_session_params session_params_from(const Args &args);

// The command line of `run` or `chat`: the model, budget, sampling and generation options
// above and the command's own (`own_flags` among `own_options`, long names; `own_aliases`).
// Unknown options and positional words are a UsageError. For --help it prints `help` and
// the shared options' help and returns nullopt.
std::optional<Args> generation_command_args(const std::vector<std::string> &argv, const char *help,
                                            const std::vector<std::string> &own_flags,
                                            const std::vector<std::string> &own_options,
                                            const std::map<std::string, std::string> &own_aliases);

// Reads --max-tokens (absent: default_max_tokens; -1: until the context is full), the
// sampler's options and --ignore-eos into generation parameters.
mst_generate_params generate_params_from(const Args &args, int64_t default_max_tokens);

}  // namespace mst::cli
