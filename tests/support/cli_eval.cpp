#include "cli_eval.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <system_error>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli_process.h"
#include "test_paths.h"

namespace mst::test {

nlohmann::json run_cli_eval(const std::string &cli, const std::string &model_dir, const std::string &text,
                            const std::vector<std::string> &args) {
    const std::string tmp = make_temp_dir("mst_eval_");
    if (tmp.empty()) {
        ADD_FAILURE() << "cannot make a temp dir for the eval text";
        return {};
    }
    struct RemoveOnExit {
        std::string path;
        ~RemoveOnExit() {
            std::error_code ec;
            std::filesystem::remove_all(path, ec);
        }
    } const cleanup{tmp};
    const std::string text_path = tmp + "/text.txt", json_path = tmp + "/out.json";
    std::ofstream(text_path) << text;
    std::vector<std::string> full = {"eval", "-m", model_dir, "--text", text_path};
    full.insert(full.end(), args.begin(), args.end());
    full.insert(full.end(), {"--json", json_path});
    const CliResult r = run_cli(cli, full);
    if (r.status != 0) {
        ADD_FAILURE() << cli << " " << fmt::format("{}", fmt::join(full, " ")) << " exited " << r.status << ":\n" << r.err;
        return {};
    }
    std::ifstream in(json_path);
    nlohmann::json out = nlohmann::json::parse(in, nullptr, false);
    if (out.is_discarded()) {
        ADD_FAILURE() << "eval wrote no valid JSON to " << json_path;
        return {};
    }
    return out;
}

}  // namespace mst::test
