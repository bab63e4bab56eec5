// The CLI's options mean what they say: an option a command does not know, a stray word, a
// flag given a value or a number out of range is an error naming it (exit status 2), never
// a run with defaults; llama.cpp's names with the same meaning are accepted; --threads is
// bounded by the cores; every option a --help lists is one the command accepts.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>
#include <vector>

#include "cli_process.h"
#include "test_paths.h"

namespace {

using mst::test::CliResult;

CliResult cli(const std::vector<std::string> &args) { return mst::test::run_cli(MST_CLI_PATH, args); }

bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

std::string tiny() { return mst::test::data_path("qwen3_moe_tiny"); }

TEST(CliOptions, UnknownShortOptionIsNamedWithWhatToUseInstead) {
    const CliResult r = cli({"run", "-m", tiny(), "-p", "Hi", "-t", "1", "-c", "128", "-ngl", "99", "junk"});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(contains(r.err, "unknown option -ngl")) << r.err;
    EXPECT_TRUE(contains(r.err, "--backend vulkan")) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(CliOptions, UnknownShortOptionWithoutHint) {
    const CliResult r = cli({"run", "-m", tiny(), "-p", "Hi", "-x"});
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(contains(r.err, "unknown option -x")) << r.err;
}

TEST(CliOptions, StrayWordIsAnError) {
    for (const char *command : {"run", "bench", "eval", "info"}) {
        const CliResult r = cli({command, "-m", tiny(), "-p", "Hi", "junk"});
        EXPECT_EQ(r.status, 2) << command << ": " << r.err;
        // run names the stray word; the others first name -p, which they do not know.
        EXPECT_TRUE(contains(r.err, std::string(command) == "run" ? "unexpected argument 'junk'" : "unknown option -p"))
            << command << ": " << r.err;
    }
}

TEST(CliOptions, UnknownOptionGivenLastIsUnknownNotMissingAValue) {
    const CliResult r = cli({"run", "-m", tiny(), "-p", "Hi", "--bogus"});
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(contains(r.err, "unknown option --bogus")) << r.err;
    EXPECT_FALSE(contains(r.err, "needs a value")) << r.err;
}

TEST(CliOptions, KnownOptionGivenLastNeedsAValue) {
    const CliResult r = cli({"run", "-m", tiny(), "-p", "Hi", "--seed"});
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(contains(r.err, "option --seed needs a value")) << r.err;
}

TEST(CliOptions, FlagGivenAValueIsAnError) {
    const CliResult r = cli({"run", "-m", tiny(), "-p", "Hi", "--ignore-eos=0"});
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(contains(r.err, "--ignore-eos takes no value")) << r.err;
}

TEST(CliOptions, LlamaCppNamesWithTheSameMeaningAreAccepted) {
    const CliResult r = cli({"run", "-m", tiny(), "-p", "Hi", "-t", "1", "-c", "64", "-s", "7", "-n", "3", "-b", "16",
                             "--temp", "0"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.err, "decode:  3 tokens")) << r.err;
    const CliResult longer = cli({"run", "-m", tiny(), "-p", "Hi", "--n-predict", "2", "--ctx-size", "64",
                                  "--batch-size", "8", "--temp", "0"});
    ASSERT_EQ(longer.status, 0) << longer.err;
    EXPECT_TRUE(contains(longer.err, "decode:  2 tokens")) << longer.err;
}

TEST(CliOptions, ContextTooSmallForThePromptIsTheLibrarysError) {
    // -c reaches the session: a context of 2 cannot hold a longer prompt.
    const CliResult r = cli({"run", "-m", tiny(), "-p", "Hello there, a prompt of many tokens", "-c", "2"});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_TRUE(contains(r.err, "context")) << r.err;
}

struct BadNumber {
    std::vector<std::string> args;
    std::string message;
};

TEST(CliOptions, NumbersAreParsedStrictlyAndOutOfRangeGivesTheRange) {
    const std::string m = tiny();
    const std::vector<BadNumber> cases = {
        {{"run", "-m", m, "-p", "Hi", "--cache-mb", "17592186044416"}, "--cache-mb must be in 0..17592186044415"},
        {{"run", "-m", m, "-p", "Hi", "--cache-mb", "-1"}, "--cache-mb must be in 0..17592186044415"},
        {{"run", "-m", m, "-p", "Hi", "--cache-mb", "0.03"}, "--cache-mb needs a whole number, got '0.03'"},
        {{"run", "-m", m, "-p", "Hi", "--experts-per-token", "4294967300"},
         "--experts-per-token must be in 0..2147483647"},
        {{"run", "-m", m, "-p", "Hi", "-n", "-2147483649"}, "--max-tokens must be in -1..2147483647"},
        {{"run", "-m", m, "-p", "Hi", "-n", "99999999999999999999"}, "--max-tokens must be in -1..2147483647"},
        {{"run", "-m", m, "-p", "Hi", "--top-p", "1.5"}, "--top-p must be in 0..1"},
        {{"run", "-m", m, "-p", "Hi", "--temp", "nan"}, "--temp needs a number, got 'nan'"},
        {{"run", "-m", m, "-p", "Hi", "--temp", "0.5x"}, "--temp needs a number, got '0.5x'"},
        {{"run", "-m", m, "-p", "Hi", "--seed", " 5"}, "--seed needs a whole number"},
        {{"run", "-m", m, "-p", "Hi", "--storage-direct-io", "2"}, "--storage-direct-io must be in 0..1"},
        {{"bench", "-m", m, "--sweep-cache-mb", "abc"}, "--sweep-cache-mb needs a whole number, got 'abc'"},
        {{"bench", "-m", m, "--sweep-cache-mb", "64,,128"}, "--sweep-cache-mb needs a whole number, got ''"},
        {{"bench", "-m", m, "--sweep-experts", "0.03"}, "--sweep-experts needs a whole number, got '0.03'"},
        {{"bench", "-m", m, "--repeat", "0"}, "--repeat must be in 1..1000"},
        {{"eval", "-m", m, "--text", "x", "--sweep", "2,0.03"}, "--sweep needs a whole number, got '0.03'"},
        {{"eval", "-m", m, "--text", "x", "--ctx", "1"}, "--ctx must be in 2..2147483647"},
        {{"eval", "-m", m, "--text", "x", "--mass", "1.5"}, "--mass must be in 0..1"},
        {{"convert", "a", "b.mst", "--zstd", "20"}, "--zstd must be in 0..19"},
    };
    for (const BadNumber &c : cases) {
        const CliResult r = cli(c.args);
        std::string shown;
        for (const std::string &a : c.args) shown += a + " ";
        EXPECT_EQ(r.status, 2) << shown << "\n" << r.err;
        EXPECT_TRUE(contains(r.err, c.message)) << shown << "\nwanted: " << c.message << "\ngot: " << r.err;
    }
}

TEST(CliOptions, ThreadCountBeyondAnIntIsRefused) {
    const CliResult r = cli({"run", "-m", tiny(), "-p", "Hi", "--threads", "99999999999"});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(contains(r.err, "--threads must be in 0..2147483647")) << r.err;
}

TEST(CliOptions, ThreadCountBeyondTheCoresIsLoweredWithAWarning) {
    const CliResult r = cli({"run", "-m", tiny(), "-p", "Hi", "-n", "1", "--threads", "10000"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.err, "warning: --threads 10000 is more than the")) << r.err;
    EXPECT_TRUE(contains(r.err, "decode:")) << r.err;
}

// Every --option a command's help lists is one the command knows (whatever else may be
// wrong with the command line), and the backends it lists are those built.
TEST(CliOptions, WriteCommandsThatFailNameTheCommandAndTheLibrarysError) {
    const CliResult convert = cli({"convert", "/nonexistent/moestream/src", "/nonexistent/moestream/out.mst"});
    EXPECT_EQ(convert.status, 1) << convert.err;
    EXPECT_TRUE(contains(convert.err, "moestream convert: ")) << convert.err;
    EXPECT_TRUE(contains(convert.err, "/nonexistent/moestream/src")) << convert.err;
    const CliResult synth = cli({"synth", "--config", "/nonexistent/moestream/config.json", "/nonexistent/out.mst"});
    EXPECT_EQ(synth.status, 1) << synth.err;
    EXPECT_TRUE(contains(synth.err, "moestream synth: ")) << synth.err;
    EXPECT_TRUE(contains(synth.err, "/nonexistent/moestream/config.json")) << synth.err;
}

TEST(CliOptions, HelpListsOnlyOptionsTheCommandAccepts) {
    const std::regex option_re("--[a-z][a-z0-9-]*");
    for (const char *command : {"run", "bench", "eval", "info", "convert", "synth", "demo"}) {
        const CliResult help = cli({command, "--help"});
        ASSERT_EQ(help.status, 0) << command;
        std::set<std::string> options;
        for (std::sregex_iterator it(help.out.begin(), help.out.end(), option_re), end; it != end; ++it)
            options.insert(it->str());
        EXPECT_GT(options.size(), 2u) << command;
        for (const std::string &option : options) {
            if (option == "--help") continue;
            const CliResult r = cli({command, option});
            EXPECT_FALSE(contains(r.err, "unknown option")) << command << " " << option << ": " << r.err;
        }
    }
}

TEST(CliOptions, HelpDescribesNewOptions) {
    const CliResult run = cli({"run", "--help"});
    for (const char *promised : {"-f, --file", "-e, --escape", "--verbose-prompt", "-c, --ctx", "-b, --batch",
                                 "--n-predict", "--min-weight", "--mass", "--cache-skip", "-t, --threads"})
        EXPECT_TRUE(contains(run.out, promised)) << promised;
    const CliResult bench = cli({"bench", "--help"});
    for (const char *promised : {"--repeat", "--min-weight", "--no-ceilings", "--sampler whole|default|greedy"})
        EXPECT_TRUE(contains(bench.out, promised)) << promised;
#ifdef MST_HAVE_VULKAN
    EXPECT_TRUE(contains(run.out, "auto | cpu | vulkan")) << run.out;
    EXPECT_TRUE(contains(run.out, "--vulkan-device")) << run.out;
#else
    EXPECT_FALSE(contains(run.out, "vulkan (")) << run.out;
#endif
}

TEST(CliOptions, InfoListsVulkanDevices) {
    const CliResult r = cli({"info", "-m", tiny()});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "architecture:")) << r.out;
    EXPECT_TRUE(contains(r.out, "Vulkan devices:")) << r.out;
    const CliResult alone = cli({"info"});
    EXPECT_EQ(alone.status, 0) << alone.err;
    EXPECT_TRUE(contains(alone.out, "Vulkan devices:")) << alone.out;
}

}  // namespace
