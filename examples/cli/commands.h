// The CLI's subcommands; each takes the arguments after its name and returns an exit code.
#pragma once

#include <string>
#include <vector>

#include "moestream.h"

namespace mst::cli {

int cmd_run(const std::vector<std::string> &args);
int cmd_chat(const std::vector<std::string> &args);
int cmd_info(const std::vector<std::string> &args);
int cmd_convert(const std::vector<std::string> &args);
int cmd_eval(const std::vector<std::string> &args);
int cmd_bench(const std::vector<std::string> &args);
int cmd_synth(const std::vector<std::string> &args);
int cmd_demo(const std::vector<std::string> &args);
int cmd_serve(const std::vector<std::string> &args);

// The summary synth and demo print after writing a synthesized model (stderr).
void print_synth_report(const std::string &path, const mst_synthesize_report &report);
// A report's notes (lines ending in '\n'; NULL or "" for none), each as "  note: ..." on stderr.
void print_notes(const char *notes);

// Model options shared by the subcommands that load a model.
extern const char *const kModelOptionsHelp;

}  // namespace mst::cli
