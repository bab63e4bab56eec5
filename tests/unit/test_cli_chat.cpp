// `moestream chat` end to end on the tiny checkpoint, its conversation scripted on stdin:
// the second turn evaluates only its new tokens, /reset forgets the conversation, an
// unknown /command is reported and the chat goes on, a model without a chat template is
// a clear error, and Ctrl-C stops an answer but not the chat.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli_process.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;
using mst::test::CliResult;

CliResult chat(std::vector<std::string> args, const std::string &script, mst::test::CliRunOptions options = {}) {
    args.insert(args.begin(), "chat");
    options.stdin_text = script;
    return mst::test::run_cli(MST_CLI_PATH, args, options);
}

bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

std::string tiny() { return mst::test::data_path("qwen3_moe_tiny"); }

struct Turn {
    size_t prompt_tokens, answer_tokens, context;
};

// The --verbose lines "[turn N: evaluated P prompt tokens and A answer tokens; context C tokens]".
std::vector<Turn> turns(const std::string &err) {
    std::vector<Turn> out;
    const std::regex re(R"(\[turn \d+: evaluated (\d+) prompt tokens and (\d+) answer tokens; context (\d+) tokens\])");
    for (std::sregex_iterator it(err.begin(), err.end(), re), end; it != end; ++it)
        out.push_back({std::stoul((*it)[1]), std::stoul((*it)[2]), std::stoul((*it)[3])});
    return out;
}

// The /stats lines "prompt:  N tokens" and "context: N tokens", in order.
std::vector<size_t> stats_numbers(const std::string &err, const std::string &label) {
    std::vector<size_t> out;
    const std::regex re(label + R"(: +(\d+) tokens)");
    for (std::sregex_iterator it(err.begin(), err.end(), re), end; it != end; ++it) out.push_back(std::stoul((*it)[1]));
    return out;
}

TEST(CliChat, SecondTurnEvaluatesOnlyItsNewTokens) {
    const CliResult r = chat({"-m", tiny(), "--temp", "0", "-n", "6", "--verbose"},
                             "Hello there\n/stats\nAnd a second \\\nmessage on two lines\n/stats\n");
    ASSERT_EQ(r.status, 0) << r.err;
    const std::vector<Turn> t = turns(r.err);
    ASSERT_EQ(t.size(), 2u) << r.err;
    EXPECT_EQ(t[0].context, t[0].prompt_tokens + t[0].answer_tokens) << r.err;
    // Turn 2 adds its tokens to turn 1's context, and fewer than the whole conversation.
    EXPECT_EQ(t[1].context, t[0].context + t[1].prompt_tokens + t[1].answer_tokens) << r.err;
    EXPECT_LT(t[1].prompt_tokens, t[1].context - t[1].answer_tokens) << r.err;
    EXPECT_FALSE(contains(r.err, "rewrote earlier turns")) << r.err;
    // The session's own counters agree: the prompt tokens of both turns, each once.
    const std::vector<size_t> prompt = stats_numbers(r.err, "prompt");
    const std::vector<size_t> context = stats_numbers(r.err, "context");
    ASSERT_EQ(prompt.size(), 2u) << r.err;
    ASSERT_EQ(context.size(), 2u) << r.err;
    EXPECT_EQ(prompt[0], t[0].prompt_tokens) << r.err;
    EXPECT_EQ(prompt[1], t[0].prompt_tokens + t[1].prompt_tokens) << r.err;
    EXPECT_EQ(context[1], t[1].context) << r.err;
    // Two answers on stdout, a line each.
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
}

TEST(CliChat, ResetStartsTheConversationOver) {
    const CliResult r = chat({"-m", tiny(), "--temp", "0", "-n", "4", "--verbose", "--system", "Be brief."},
                             "Hello there\n/reset\n/stats\nHello there\n");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.err, "[conversation reset]")) << r.err;
    EXPECT_TRUE(contains(r.err, "context: 0 tokens, 0 turns")) << r.err;
    const std::vector<Turn> t = turns(r.err);
    ASSERT_EQ(t.size(), 2u) << r.err;
    // The same first message after the reset: the same rendering (system message kept), all evaluated.
    EXPECT_EQ(t[1].prompt_tokens, t[0].prompt_tokens) << r.err;
    EXPECT_EQ(t[1].context, t[0].context) << r.err;
    EXPECT_TRUE(contains(r.err, "[turn 1:")) << r.err;
    EXPECT_FALSE(contains(r.err, "[turn 2:")) << r.err;
}

TEST(CliChat, UnknownCommandIsReportedAndTheChatGoesOn) {
    const CliResult r = chat({"-m", tiny(), "--temp", "0", "-n", "3", "--verbose"}, "/bogus\nHello\n/exit\nnot read\n");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.err, "unknown command '/bogus'")) << r.err;
    EXPECT_EQ(turns(r.err).size(), 1u) << r.err;  // Hello answered; nothing after /exit
}

TEST(CliChat, DoubleSlashSendsAMessageStartingWithASlash) {
    const CliResult r = chat({"-m", tiny(), "--temp", "0", "-n", "2", "--verbose"}, "//etc/hosts\n/quit\n");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_FALSE(contains(r.err, "unknown command")) << r.err;
    EXPECT_EQ(turns(r.err).size(), 1u) << r.err;
}

// A full context ends the answer; the next turn that does not fit is refused, the chat goes on.
TEST(CliChat, FullContextIsReportedAndTheChatGoesOn) {
    const CliResult r = chat({"-m", tiny(), "-c", "40", "--ignore-eos", "-n", "100", "--verbose"},
                             "Hello there\nAnd more\n/stats\n/reset\nHi\n");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.err, "the context is full")) << r.err;
    EXPECT_TRUE(contains(r.err, "context full")) << r.err;  // the second turn's prompt did not fit
    EXPECT_TRUE(contains(r.err, "context: 40 tokens, 1 turns")) << r.err;
    const std::vector<Turn> t = turns(r.err);
    ASSERT_EQ(t.size(), 2u) << r.err;  // the first turn, and the one after /reset
    EXPECT_EQ(t[0].context, 40u) << r.err;
}

TEST(CliChat, ModelWithoutTemplateIsAClearError) {
    const fs::path dir = fs::temp_directory_path() / ("mst_chat_no_template_" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const fs::directory_entry &e : fs::directory_iterator(tiny()))
        if (e.path().filename() != "tokenizer_config.json") fs::copy_file(e.path(), dir / e.path().filename());
    std::ifstream in(fs::path(tiny()) / "tokenizer_config.json");
    std::stringstream text;
    text << in.rdbuf();
    const std::string without = std::regex_replace(text.str(), std::regex(R"(\n\s*"chat_template": "[^\n]*",)"), "");
    ASSERT_NE(without, text.str());
    std::ofstream(dir / "tokenizer_config.json") << without;

    const CliResult r = chat({"-m", dir.string()}, "Hello\n");
    fs::remove_all(dir);
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_TRUE(contains(r.err, "has no chat template")) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
}

// A template that rewrites earlier turns (here: a count of messages written after them, as
// Qwen3 drops earlier thinking) breaks the prefix: the session starts over and says so.
TEST(CliChat, RewrittenHistoryIsEvaluatedAgain) {
    const fs::path dir = fs::temp_directory_path() / ("mst_chat_rewrite_" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const fs::directory_entry &e : fs::directory_iterator(tiny())) fs::create_symlink(e.path(), dir / e.path().filename());
    std::ofstream(dir / "chat_template.jinja")
        << "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
           "[{{ messages|length }} messages]{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    const CliResult r = chat({"-m", dir.string(), "--temp", "0", "-n", "4", "--verbose"}, "Hello there\nAgain\n");
    fs::remove_all(dir);
    ASSERT_EQ(r.status, 0) << r.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.err, m, std::regex(R"(rewrote earlier turns: (\d+) of (\d+) context tokens still match)")))
        << r.err;
    const std::vector<Turn> t = turns(r.err);
    ASSERT_EQ(t.size(), 2u) << r.err;
    EXPECT_GT(std::stoul(m[1]), 0u) << r.err;  // the first user turn is common to both
    EXPECT_LT(std::stoul(m[1]), t[0].context) << r.err;
    EXPECT_EQ(std::stoul(m[2]), t[0].context) << r.err;
    // The whole conversation evaluated again, nothing kept from turn 1.
    EXPECT_EQ(t[1].context, t[1].prompt_tokens + t[1].answer_tokens) << r.err;
    EXPECT_GT(t[1].prompt_tokens, t[0].prompt_tokens) << r.err;
}

TEST(CliChat, BadTemplateVariableFailsBeforeTheConversation) {
    const CliResult r = chat({"-m", tiny(), "--template-var", "enable_thinking=fals"}, "Hello\n");
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_TRUE(contains(r.err, "does not render")) << r.err;
    const CliResult u = chat({"-m", tiny(), "--template-var", "novalue"}, "Hello\n");
    EXPECT_EQ(u.status, 2) << u.err;
    EXPECT_TRUE(contains(u.err, "NAME=JSON")) << u.err;
    const CliResult both = chat({"-m", tiny(), "--think", "--no-think"}, "Hello\n");
    EXPECT_EQ(both.status, 2) << both.err;
}

TEST(CliChat, CtrlCStopsTheAnswerNotTheChat) {
    mst::test::CliRunOptions options;
    options.interrupt_after_stdout_bytes = 1;
    // Without Ctrl-C each answer would be 2000 tokens long.
    const CliResult r = chat({"-m", tiny(), "--ignore-eos", "-n", "2000", "--verbose"}, "Hi\n/stats\nAgain\n", options);
    EXPECT_EQ(r.status, 0) << "signal " << r.term_signal << "\n" << r.err;
    EXPECT_TRUE(contains(r.err, "[interrupted]")) << r.err;
    const std::vector<Turn> t = turns(r.err);
    ASSERT_EQ(t.size(), 2u) << r.err;  // the chat went on to the second message
    EXPECT_LT(t[0].answer_tokens, 2000u) << r.err;
    EXPECT_EQ(t[1].answer_tokens, 2000u) << r.err;
    EXPECT_EQ(t[1].context, t[0].context + t[1].prompt_tokens + t[1].answer_tokens) << r.err;
}

// Every --option chat's help lists is one it accepts, and its help names its commands.
TEST(CliChat, HelpListsOnlyOptionsItAccepts) {
    const CliResult help = mst::test::run_cli(MST_CLI_PATH, {"chat", "--help"});
    ASSERT_EQ(help.status, 0) << help.err;
    for (const char *promised : {"/reset", "/stats", "/exit", "--system", "--template-var", "--no-think", "--verbose"})
        EXPECT_TRUE(contains(help.out, promised)) << promised;
    const std::regex option_re("--[a-z][a-z0-9-]*");
    std::set<std::string> options;
    for (std::sregex_iterator it(help.out.begin(), help.out.end(), option_re), end; it != end; ++it)
        options.insert(it->str());
    EXPECT_GT(options.size(), 20u);
    for (const std::string &option : options) {
        if (option == "--help") continue;
        const CliResult r = chat({option}, "");
        EXPECT_NE(r.status, 0) << option;  // no model given
        EXPECT_FALSE(contains(r.err, "unknown option")) << option << ": " << r.err;
    }
    const CliResult unknown = chat({"-m", tiny(), "--prompt", "x"}, "");
    EXPECT_EQ(unknown.status, 2) << unknown.err;
    EXPECT_TRUE(contains(unknown.err, "--prompt")) << unknown.err;
}

}  // namespace
