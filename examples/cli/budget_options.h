// The expert budget rules (mst_expert_budget) as options, shared by run, bench and eval.
#pragma once

#include <string>
#include <vector>

#include "cli_args.h"
#include "moestream.h"

namespace mst::cli {

extern const char *const kBudgetOptionsHelp;

// Option names read by budget_from(), for Args::reject_unknown.
std::vector<std::string> budget_option_names();

// The budget the options give, with `experts_per_token` (0 = the model's setting).
mst_expert_budget budget_from(const Args &args, int32_t experts_per_token);

// The rules that are on, e.g. " min-w=0.1 mass=0.9"; empty when none is.
std::string budget_rules_str(const mst_expert_budget &budget);

}  // namespace mst::cli
