// The report `moestream run` prints on stderr after generating: speed, expert traffic and
// hit rate of the prompt and of decoding apart (a prompt reads most experts of every layer
// once, decoding reads only the few each token picks, so one average over both describes
// neither), then the budget, memory, cache and why generation stopped.
#pragma once

#include <string>

#include "moestream.hpp"

namespace mst::cli {

struct RunOutcome {
    mst_session_stats after_prompt{};  // when the prompt was evaluated (before any generated token)
    mst_session_stats end{};
    mst_expert_budget budget{};
    mst_stop_reason reason = MST_STOP_NONE;
    bool interrupted = false;          // Ctrl-C
    size_t prompt_tokens = 0;          // the prompt's length, evaluated or not
};

void print_run_report(const ModelHandle &model, const RunOutcome &run, const std::string &cache_policy_name);

}  // namespace mst::cli
