// `moestream eval` on a given text, for the tests that check what it reports: the text is
// written to a fresh temp dir, the CLI run with --json into it, the JSON parsed and the
// dir removed however the call ends.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mst::test {

// Runs `cli eval -m model_dir --text TEXT_FILE args... --json JSON_FILE`. On a failed run
// (no temp dir, a non-zero exit, unparsable JSON) it records a test failure naming the
// command and its stderr, and returns null JSON.
nlohmann::json run_cli_eval(const std::string &cli, const std::string &model_dir, const std::string &text,
                            const std::vector<std::string> &args);

}  // namespace mst::test
