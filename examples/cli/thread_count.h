// The --threads option of every command: a count the machine can run. More compute
// threads than the cores this process may use only make them wait on each other (and
// a count in the millions made the OpenMP runtime exit the process), so a larger count
// is lowered to the cores with a warning.
#pragma once

#include <cstdint>
#include <string>

#include "cli_args.h"

namespace mst::cli {

// Cores this process may run on (its CPU affinity mask, else the online cores).
int32_t available_cores();

// The option `name` (default 0 = all cores), lowered to available_cores() with a warning
// on stderr when larger.
int32_t thread_count_from(const Args &args, const std::string &name = "threads");

}  // namespace mst::cli
