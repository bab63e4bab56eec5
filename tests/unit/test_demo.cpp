// The CLI's synth, demo and bench --plot end to end, on tiny configs: demo synthesizes
// once, reuses a model that loads, re-synthesizes one that does not, and reports the
// numbers it promises; synth refuses to overwrite; bench writes its plot with the data
// and script beside it (or says gnuplot is missing).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_process.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;

struct Result {
    int status = -1;
    std::string output;  // stdout, then stderr
};

Result run(const std::vector<std::string> &args) {
    const mst::test::CliResult r = mst::test::run_cli(MST_CLI_PATH, args);
    return Result{r.status, r.out + r.err};
}

bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

class CliTools : public ::testing::Test {
protected:
    void SetUp() override {
        tmp_ = mst::test::make_temp_dir("mst_demo_");
        config_ = tmp_ + "/tiny.json";
        std::ifstream in(mst::test::data_path("qwen3_moe_tiny/config.json"));
        nlohmann::json c = nlohmann::json::parse(in);
        c["num_hidden_layers"] = 4;
        c["mlp_only_layers"] = nlohmann::json::array();
        std::ofstream(config_) << c.dump(2);
    }
    void TearDown() override { fs::remove_all(tmp_); }
    std::string tmp_, config_;
};

TEST_F(CliTools, DemoSynthesizesOnceThenReuses) {
    const std::string models = tmp_ + "/models";
    const std::vector<std::string> args = {"demo",    "--config",   config_, "--layers", "3", "--model-dir", models,
                                           "--tokens", "4", "--cache-mb", "0",     "--prompt", "Hello there"};
    const Result first = run(args);
    ASSERT_EQ(first.status, 0) << first.output;
    EXPECT_TRUE(contains(first.output, "synthesizing")) << first.output;
    EXPECT_TRUE(contains(first.output, "3 of 4 layers")) << first.output;
    EXPECT_TRUE(contains(first.output, "Hello there")) << first.output;
    for (const char *promised : {"tok/s", "of experts per token", "hit rate", "limit:"})
        EXPECT_TRUE(contains(first.output, promised)) << "missing '" << promised << "' in:\n" << first.output;
    const fs::path model = fs::path(models) / "tiny-3L-q4.mst";
    ASSERT_TRUE(fs::exists(model));
    const auto written = fs::last_write_time(model);

    const Result second = run(args);
    ASSERT_EQ(second.status, 0) << second.output;
    EXPECT_TRUE(contains(second.output, "reusing")) << second.output;
    EXPECT_FALSE(contains(second.output, "synthesizing")) << second.output;
    EXPECT_EQ(fs::last_write_time(model), written);

    // A damaged cached model is made again, not used.
    fs::resize_file(model, fs::file_size(model) - 4096);
    const Result third = run(args);
    ASSERT_EQ(third.status, 0) << third.output;
    EXPECT_TRUE(contains(third.output, "does not load")) << third.output;
    EXPECT_TRUE(contains(third.output, "tok/s")) << third.output;
}

TEST_F(CliTools, DemoUsesTheCacheDirectoryVariable) {
    const std::string cache = tmp_ + "/cache";
    const std::string cmd = "MST_CACHE_DIR=" + cache + " " + std::string(MST_CLI_PATH) + " demo --config " + config_ +
                            " --layers 2 --tokens 2 --cache-mb 0 > /dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    EXPECT_TRUE(fs::exists(fs::path(cache) / "tiny-2L-q4.mst"));
}

TEST_F(CliTools, SynthWritesRefusesAndForces) {
    const std::string out = tmp_ + "/s.mst";
    const Result first = run({"synth", "--config", config_, "--layers", "2", "--experts", "q8", "--seed", "3", out});
    ASSERT_EQ(first.status, 0) << first.output;
    EXPECT_TRUE(contains(first.output, "2 of 4 layers")) << first.output;
    EXPECT_TRUE(contains(first.output, "/s written")) << first.output;
    const Result again = run({"synth", "--config", config_, out});
    EXPECT_EQ(again.status, 1);
    EXPECT_TRUE(contains(again.output, "--force")) << again.output;
    const Result forced = run({"synth", "--config", config_, "--force", out});
    EXPECT_EQ(forced.status, 0) << forced.output;
    const Result bad = run({"synth", "--config", config_, "--experts", "q5", tmp_ + "/x.mst"});
    EXPECT_EQ(bad.status, 1);
    EXPECT_TRUE(contains(bad.output, "q5")) << bad.output;
    const Result usage = run({"synth", out});
    EXPECT_EQ(usage.status, 2);
    EXPECT_TRUE(contains(usage.output, "--config")) << usage.output;
}

TEST_F(CliTools, BenchPlotsDecodeSpeedAgainstTheCacheBudget) {
    const std::string model = tmp_ + "/b.mst";
    ASSERT_EQ(run({"synth", "--config", config_, model}).status, 0);
    const std::string plot = tmp_ + "/plot.svg";
    const Result r = run({"bench", "-m", model, "--prompt-tokens", "4", "--gen-tokens", "3", "--no-ceilings",
                          "--sweep-cache-mb", "0,1", "--sweep-policy", "lru,lfu", "--plot", plot});
    if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) {
        EXPECT_NE(r.status, 0);
        EXPECT_TRUE(contains(r.output, "gnuplot")) << r.output;
        GTEST_SKIP() << "gnuplot is not installed; checked the error only";
    }
    ASSERT_EQ(r.status, 0) << r.output;
    // One table: the header once, then a row per setting (the spread over repeats follows
    // as a table of its own, with other column names).
    size_t headers = 0;
    for (size_t at = r.output.find("pre t/s"); at != std::string::npos; at = r.output.find("pre t/s", at + 1))
        ++headers;
    EXPECT_EQ(headers, 1u) << r.output;
    EXPECT_TRUE(fs::exists(plot));
    ASSERT_TRUE(fs::exists(tmp_ + "/plot.dat"));
    ASSERT_TRUE(fs::exists(tmp_ + "/plot.gp"));
    std::ifstream dat(tmp_ + "/plot.dat");
    const std::string data((std::istreambuf_iterator<char>(dat)), std::istreambuf_iterator<char>());
    EXPECT_TRUE(contains(data, "lru")) << data;
    EXPECT_TRUE(contains(data, "lfu")) << data;
    std::ifstream svg(plot);
    const std::string image((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
    EXPECT_TRUE(contains(image, "<svg")) << image.substr(0, 200);

    const Result bad = run({"bench", "-m", model, "--plot", tmp_ + "/plot.pdf", "--gen-tokens", "1", "--prompt-tokens", "1"});
    EXPECT_NE(bad.status, 0);
}

}  // namespace
