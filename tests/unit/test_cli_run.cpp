// `moestream run` end to end on the tiny checkpoint: the budget rules eval has, a report
// that gives the prompt and decoding apart, the prompt from -p (literal unless --escape)
// or -f, Ctrl-C that stops cleanly and still reports, and prefill progress on a terminal.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "cli_process.h"
#include "test_paths.h"

namespace {

using mst::test::CliResult;

CliResult cli(const std::vector<std::string> &args, const mst::test::CliRunOptions &options = {}) {
    return mst::test::run_cli(MST_CLI_PATH, args, options);
}

bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

std::string tiny() { return mst::test::data_path("qwen3_moe_tiny"); }

const char *const kLongPrompt =
    "The quickest way to read a model from disk is to read only the experts each token needs, "
    "and to keep the rest where it is until a token asks for it.";

// The lines of the --verbose-prompt listing ("  id -> 'text'").
std::vector<std::string> prompt_token_lines(const std::string &err) {
    std::vector<std::string> lines;
    const std::regex line_re(R"(\s+\d+ -> '[^\n]*')");
    for (std::sregex_iterator it(err.begin(), err.end(), line_re), end; it != end; ++it) lines.push_back(it->str());
    return lines;
}

TEST(CliRun, AcceptsTheBudgetRulesOfEval) {
    const CliResult r = cli({"run", "-m", tiny(), "-p", kLongPrompt, "-n", "4", "--min-weight", "0.5", "--mass", "0.9",
                             "--cache-skip", "0.1"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.err, "min-w=0.5 mass=0.9 cache-skip=0.1")) << r.err;
    // With a weight floor of one half, at most one other expert than the top one can stay.
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.err, m, std::regex(R"(budget:  (\d+) of (\d+) expert slots skipped)"))) << r.err;
    EXPECT_GT(std::stoull(m[1]), 0u) << r.err;
}

TEST(CliRun, ReportsPromptAndDecodeApart) {
    const CliResult r = cli({"run", "-m", tiny(), "-p", kLongPrompt, "-n", "6", "--temp", "0"});
    ASSERT_EQ(r.status, 0) << r.err;
    const std::regex phase_re(R"((prompt|decode): +(\d+) tokens in [0-9.]+ s \([0-9.]+ tok/s\); experts [^()]+ read )"
                              R"(\(([^)]+) per token\), hits (\d+) / misses (\d+) \([0-9.]+% hit\))");
    std::vector<std::string> phases;
    for (std::sregex_iterator it(r.err.begin(), r.err.end(), phase_re), end; it != end; ++it) {
        phases.push_back((*it)[1]);
        if ((*it)[1] == "decode") {
            EXPECT_EQ((*it)[2], "6") << r.err;
        }
    }
    EXPECT_EQ(phases, (std::vector<std::string>{"prompt", "decode"})) << r.err;
}

TEST(CliRun, PromptIsLiteralUnlessEscapeAndFileIsReadAsItIs) {
    const std::string dir = mst::test::make_temp_dir("mst_cli_run_");
    const std::string file = dir + "/prompt.txt";
    std::ofstream(file) << "Hello\nworld";
    const CliResult from_file = cli({"run", "-m", tiny(), "-f", file, "-n", "0", "--verbose-prompt"});
    const CliResult escaped = cli({"run", "-m", tiny(), "-p", "Hello\\nworld", "-e", "-n", "0", "--verbose-prompt"});
    const CliResult literal = cli({"run", "-m", tiny(), "-p", "Hello\\nworld", "-n", "0", "--verbose-prompt"});
    std::filesystem::remove_all(dir);
    ASSERT_EQ(from_file.status, 0) << from_file.err;
    ASSERT_EQ(escaped.status, 0) << escaped.err;
    ASSERT_EQ(literal.status, 0) << literal.err;
    const std::vector<std::string> newline = prompt_token_lines(from_file.err);
    ASSERT_FALSE(newline.empty()) << from_file.err;
    EXPECT_EQ(prompt_token_lines(escaped.err), newline);
    EXPECT_NE(prompt_token_lines(literal.err), newline);
    EXPECT_TRUE(contains(from_file.err, "-> '\\n'")) << from_file.err;    // a newline token
    EXPECT_TRUE(contains(literal.err, "\\\\")) << literal.err;            // a backslash, kept
}

TEST(CliRun, PromptFromBothOrNeitherIsAnError) {
    const CliResult both = cli({"run", "-m", tiny(), "-p", "Hi", "-f", "/nonexistent"});
    EXPECT_EQ(both.status, 2);
    EXPECT_TRUE(contains(both.err, "-p TEXT or -f FILE, not both")) << both.err;
    const CliResult neither = cli({"run", "-m", tiny()});
    EXPECT_EQ(neither.status, 2);
    EXPECT_TRUE(contains(neither.err, "missing the prompt")) << neither.err;
    const CliResult unreadable = cli({"run", "-m", tiny(), "-f", "/nonexistent/prompt.txt"});
    EXPECT_EQ(unreadable.status, 2);
    EXPECT_TRUE(contains(unreadable.err, "cannot read the prompt file '/nonexistent/prompt.txt'")) << unreadable.err;
}

TEST(CliRun, CtrlCStopsCleanlyAndStillReports) {
    mst::test::CliRunOptions options;
    options.interrupt_after_stdout_bytes = 1;
    // Without a limit the tiny model would decode its whole 4096-token context (seconds).
    const CliResult r = cli({"run", "-m", tiny(), "-p", "Hi", "-n", "-1", "--ignore-eos"}, options);
    EXPECT_EQ(r.status, 130) << "signal " << r.term_signal << "\n" << r.err;
    EXPECT_TRUE(contains(r.err, "stopped: interrupted (Ctrl-C)")) << r.err;
    EXPECT_TRUE(contains(r.err, "decode:")) << r.err;
    EXPECT_FALSE(contains(r.err, "decode:  4094 tokens")) << r.err;
}

TEST(CliRun, LongPromptShowsProgressOnATerminalOnly) {
    mst::test::CliRunOptions on_terminal;
    on_terminal.stderr_on_terminal = true;
    const std::vector<std::string> args = {"run", "-m", tiny(), "-p", kLongPrompt, "-b", "4", "-n", "1"};
    const CliResult tty = cli(args, on_terminal);
    ASSERT_EQ(tty.status, 0) << tty.err;
    EXPECT_TRUE(contains(tty.err, "\rprompt: 4 / ")) << tty.err;
    EXPECT_TRUE(contains(tty.err, "tok/s, ETA")) << tty.err;
    const CliResult piped = cli(args);
    ASSERT_EQ(piped.status, 0) << piped.err;
    EXPECT_FALSE(contains(piped.err, "ETA")) << piped.err;
    // Batched or not, the prompt is the same prompt.
    const std::regex prompt_re(R"(prompt: +(\d+) tokens in)");
    std::smatch a, b;
    ASSERT_TRUE(std::regex_search(tty.err, a, prompt_re)) << tty.err;
    ASSERT_TRUE(std::regex_search(piped.err, b, prompt_re)) << piped.err;
    EXPECT_EQ(a[1], b[1]);
    EXPECT_GT(std::stoi(a[1]), 8);
}

}  // namespace
