// `moestream bench` and `eval` on the tiny checkpoint: bench names the tier and top-k that
// ran, repeats each setting and gives min / median / max, records what it ran on, accepts
// the budget rules and prints no "inf"; eval's speed columns are not taken on an expert
// cache the reference pass warmed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_process.h"
#include "test_paths.h"

namespace {

using mst::test::CliResult;

CliResult cli(const std::vector<std::string> &args) { return mst::test::run_cli(MST_CLI_PATH, args); }

bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

std::string tiny() { return mst::test::data_path("qwen3_moe_tiny"); }

class CliBenchEval : public ::testing::Test {
protected:
    void SetUp() override { dir_ = mst::test::make_temp_dir("mst_cli_bench_"); }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string dir_;
};

TEST_F(CliBenchEval, BenchNamesWhatRanRepeatsAndRecordsTheMachine) {
    const std::string json_path = dir_ + "/bench.json";
    const CliResult r = cli({"bench", "-m", tiny(), "--prompt-tokens", "4", "--gen-tokens", "2", "--repeat", "2",
                             "--no-ceilings", "--mass", "0.9", "--json", json_path});
    ASSERT_EQ(r.status, 0) << r.err << r.out;
    // The tiny model's own top-k is 4; "auto" is resolved to the tier it chose and the
    // automatic cache budget to its bytes (all of this tiny model's experts fit).
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(k=4 (mmap|pread|direct) learned [0-9.]+ (B|KiB|MiB|GiB) mass=0\.9)")))
        << r.out;
    EXPECT_FALSE(contains(r.out, "k=model")) << r.out;
    EXPECT_FALSE(contains(r.out, " auto ")) << r.out;
    EXPECT_FALSE(contains(r.out, "inf")) << r.out;
    EXPECT_TRUE(contains(r.out, "spread over 2 run(s): min / median / max")) << r.out;

    std::ifstream in(json_path);
    const nlohmann::json doc = nlohmann::json::parse(in);
    const nlohmann::json &env = doc.at("environment");
    for (const char *key : {"moestream_version", "build_type", "cpu_model", "kernel"})
        EXPECT_FALSE(env.at(key).get<std::string>().empty()) << key;
    EXPECT_GT(env.at("threads").get<int>(), 0);
    EXPECT_EQ(doc.at("repeat"), 2);
    EXPECT_FALSE(doc.contains("disk_probe"));  // --no-ceilings: no probe was made
    const nlohmann::json &result = doc.at("results").at(0);
    EXPECT_EQ(result.at("experts_per_token"), 4);
    EXPECT_NE(result.at("storage"), "auto");
    EXPECT_EQ(result.at("decode_tps_runs").size(), 2u);
    const nlohmann::json &decode = result.at("decode_tps");
    EXPECT_LE(decode.at("min").get<double>(), decode.at("median").get<double>());
    EXPECT_LE(decode.at("median").get<double>(), decode.at("max").get<double>());
    EXPECT_FALSE(result.contains("roofline_fraction"));
    // The evaluating thread's CPU per decode token, one figure a run, and its note.
    const nlohmann::json &cpu = result.at("decode_eval_cpu_ms_per_token_runs");
    ASSERT_EQ(cpu.size(), 2u);
    for (const auto &ms : cpu) EXPECT_GT(ms.get<double>(), 0.0);
    EXPECT_TRUE(contains(r.out, "CPU of the evaluating thread per decode token")) << r.out;
    // Split into the first decode token's and the later ones' mean: with 2 tokens a run,
    // the per-token figure is their mean (printed to 3 decimals, stored exactly).
    const nlohmann::json &first = result.at("first_decode_eval_cpu_ms_runs");
    const nlohmann::json &later = result.at("later_decode_eval_cpu_ms_per_token_runs");
    ASSERT_EQ(first.size(), 2u);
    ASSERT_EQ(later.size(), 2u);
    for (size_t i = 0; i < 2; ++i)
        EXPECT_NEAR(cpu[i].get<double>(), (first[i].get<double>() + later[i].get<double>()) / 2.0, 1e-9) << i;
    EXPECT_TRUE(contains(r.out, "of that, the first decode token's")) << r.out;
    // The backend's counters over the decode: a count each, replayed and recorded within
    // the submissions a device backend makes (none on the CPU backend).
    for (const char *key : {"decode_submissions_replayed", "decode_submissions_recorded", "decode_pipelines_created"})
        EXPECT_TRUE(result.at(key).is_number_unsigned()) << key;
    EXPECT_GE(result.at("decode_pipeline_create_seconds").get<double>(), 0.0);
}

TEST_F(CliBenchEval, BenchSplitsALaterTokenIntoEvalSamplingAndTheRest) {
    for (const char *sampler : {"greedy", "default", "whole"}) {
        SCOPED_TRACE(sampler);
        const std::string json_path = dir_ + "/bench_" + sampler + ".json";
        const CliResult r = cli({"bench", "-m", tiny(), "--prompt-tokens", "4", "--gen-tokens", "4", "--repeat", "2",
                                 "--no-ceilings", "--sampler", sampler, "--json", json_path});
        ASSERT_EQ(r.status, 0) << r.err << r.out;
        EXPECT_TRUE(contains(r.out, std::string("chosen by the ") + sampler + " sampler")) << r.out;
        EXPECT_TRUE(contains(r.out, "a later decode token's wall time")) << r.out;
        EXPECT_TRUE(contains(r.out, "the first decode token's eval took")) << r.out;
        std::ifstream in(json_path);
        const nlohmann::json doc = nlohmann::json::parse(in);
        EXPECT_EQ(doc.at("sampler"), sampler);
        const nlohmann::json &result = doc.at("results").at(0);
        // One figure a run; eval and sampling take time, and the loop's rate counts both, so
        // it is below the rate of eval alone over the same later tokens.
        for (const char *key : {"later_decode_eval_ms_per_token_runs", "later_decode_sample_ms_per_token_runs",
                                "later_decode_sample_cpu_ms_per_token_runs", "later_decode_other_ms_per_token_runs",
                                "later_decode_loop_tps_runs", "first_decode_sample_ms_runs",
                                "first_decode_eval_ms_runs", "first_decode_pipeline_create_ms_runs"})
            ASSERT_EQ(result.at(key).size(), 2u) << key;
        for (size_t i = 0; i < 2; ++i) {
            const double eval_ms = result.at("later_decode_eval_ms_per_token_runs")[i].get<double>();
            const double sample_ms = result.at("later_decode_sample_ms_per_token_runs")[i].get<double>();
            const double other_ms = result.at("later_decode_other_ms_per_token_runs")[i].get<double>();
            EXPECT_GT(eval_ms, 0.0);
            EXPECT_GT(sample_ms, 0.0);
            EXPECT_GE(other_ms, 0.0);
            EXPECT_NEAR(result.at("later_decode_loop_tps_runs")[i].get<double>(), 1e3 / (eval_ms + sample_ms + other_ms),
                        1e-6 * 1e3 / eval_ms);
            EXPECT_GT(result.at("first_decode_eval_ms_runs")[i].get<double>(), 0.0);
        }
    }
    const CliResult bad = cli({"bench", "-m", tiny(), "--no-ceilings", "--sampler", "topk"});
    EXPECT_NE(bad.status, 0);
    EXPECT_TRUE(contains(bad.err + bad.out, "--sampler must be whole, default or greedy, got 'topk'")) << bad.err;
}

TEST_F(CliBenchEval, BenchWithCeilingsRecordsTheDiskProbe) {
    const std::string json_path = dir_ + "/bench.json";
    const CliResult r = cli({"bench", "-m", tiny(), "--prompt-tokens", "4", "--gen-tokens", "2", "--repeat", "1",
                             "--sweep-experts", "2,0", "--json", json_path});
    ASSERT_EQ(r.status, 0) << r.err << r.out;
    EXPECT_FALSE(contains(r.out, "inf")) << r.out;
    std::ifstream in(json_path);
    const nlohmann::json doc = nlohmann::json::parse(in);
    ASSERT_TRUE(doc.contains("disk_probe"));
    EXPECT_TRUE(doc.at("disk_probe").contains("bytes_per_second"));
    ASSERT_EQ(doc.at("results").size(), 2u);
    EXPECT_EQ(doc.at("results").at(0).at("experts_per_token"), 2);
    EXPECT_EQ(doc.at("results").at(1).at("experts_per_token"), 4);  // 0: the model's own, named as it ran
}

// The reference pass and the budget share one model before the fix: the budget then found
// every expert the reference had just read in the cache and read nothing.
TEST_F(CliBenchEval, EvalSpeedIsNotTakenOnACacheTheReferenceWarmed) {
    const std::string text = dir_ + "/text.txt";
    std::ofstream(text) << "The quick brown fox jumps over the lazy dog. A second sentence follows, then a third.";
    const CliResult r = cli({"eval", "-m", tiny(), "--text", text, "--ctx", "16", "--experts-per-token", "4"});
    ASSERT_EQ(r.status, 0) << r.err << r.out;
    EXPECT_TRUE(contains(r.out, "prefill t/s")) << r.out;
    EXPECT_TRUE(contains(r.out, "loaded afresh")) << r.out;
    std::smatch m;
    // budget, perplexity, KL mean, KL p99, top-1, prefill t/s, then experts/tok ("60.00 KiB")
    const std::regex row_re(R"(\nk=4 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+% +[0-9.]+ +(\S+ \S+))");
    ASSERT_TRUE(std::regex_search(r.out, m, row_re)) << r.out;
    EXPECT_NE(m[1].str(), "0 B") << r.out;
}

}  // namespace
