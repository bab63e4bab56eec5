// The CLI's subcommands; each takes the arguments after its name and returns an exit code.
#pragma once

#include <string>
#include <vector>

namespace mst::cli {

int cmd_run(const std::vector<std::string> &args);
int cmd_info(const std::vector<std::string> &args);
int cmd_convert(const std::vector<std::string> &args);
int cmd_eval(const std::vector<std::string> &args);
int cmd_bench(const std::vector<std::string> &args);

// Model options shared by the subcommands that load a model.
extern const char *const kModelOptionsHelp;

}  // namespace mst::cli
