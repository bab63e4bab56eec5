// Writes that do not finish: `synth` (and `convert`, through the same InterruptGuard and
// progress callback) removes its temporary file on SIGTERM and SIGHUP as on SIGINT (the
// CLI binary is run and signalled); a temporary
// file left by a SIGKILL is removed by the next write to the same destination, while one
// that a live writer holds is left alone; and synth refuses a model that cannot fit
// before it spends time on the tokenizer.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/output_file.h"
#include "moestream.h"
#include "test_paths.h"

extern char **environ;

namespace mst {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A Qwen3-MoE config of a few GB with bf16 experts: long enough to write that the
// signal lands mid-write.
const char *const kLargeConfig = R"({"model_type": "qwen3_moe", "hidden_size": 512, "intermediate_size": 1024,
  "moe_intermediate_size": 1024, "num_experts": 64, "num_experts_per_tok": 4, "num_hidden_layers": 16,
  "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 32000,
  "rms_norm_eps": 1e-6, "rope_theta": 10000, "max_position_embeddings": 4096, "tie_word_embeddings": false,
  "norm_topk_prob": true, "decoder_sparse_step": 1, "mlp_only_layers": []})";

class InterruptedWrites : public ::testing::Test {
protected:
    void SetUp() override {
        tmp_ = test::make_temp_dir("mst_interrupted_");
        ASSERT_FALSE(tmp_.empty());
        config_ = tmp_ + "/config.json";
        std::ofstream(config_) << kLargeConfig;
        out_ = tmp_ + "/m.mst";
    }
    void TearDown() override { fs::remove_all(tmp_); }

    std::vector<std::string> temp_files() const {
        std::vector<std::string> found;
        for (const auto &entry : fs::directory_iterator(tmp_))
            if (entry.path().filename().string().find(".tmp.") != std::string::npos) found.push_back(entry.path());
        return found;
    }

    // Starts the CLI with `args`, waits until its temporary file exists, sends `sig`
    // and returns the wait status.
    int run_and_signal(std::vector<std::string> args, int sig) {
        args.insert(args.begin(), MST_CLI_PATH);
        std::vector<char *> argv;
        for (std::string &a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, (tmp_ + "/stderr.txt").c_str(),
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
        pid_t pid = 0;
        const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        EXPECT_EQ(spawned, 0);
        if (spawned != 0) return -1;
        const auto deadline = Clock::now() + std::chrono::seconds(60);
        int status = 0;
        bool exited = false;
        while (temp_files().empty() && Clock::now() < deadline) {
            if (waitpid(pid, &status, WNOHANG) == pid) {
                exited = true;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        EXPECT_FALSE(exited) << "the command ended before its temporary file appeared";
        EXPECT_FALSE(temp_files().empty()) << "no temporary file appeared";
        if (exited) return status;
        kill(pid, sig);
        waitpid(pid, &status, 0);
        return status;
    }

    std::string tmp_, config_, out_;
};

TEST_F(InterruptedWrites, SynthRemovesItsTemporaryFileOnTermAndHangup) {
    for (const int sig : {SIGTERM, SIGHUP, SIGINT}) {
        const int status = run_and_signal({"synth", "--config", config_, "--experts", "bf16", "--threads", "1", out_},
                                          sig);
        EXPECT_TRUE(WIFEXITED(status)) << "signal " << sig << " killed the process instead of cancelling it";
        EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 130) << "signal " << sig;
        EXPECT_TRUE(temp_files().empty()) << "signal " << sig << " left " << temp_files().front();
        EXPECT_FALSE(fs::exists(out_));
    }
}

TEST_F(InterruptedWrites, TemporaryFileLeftByKillIsRemovedByTheNextWrite) {
    const int status =
        run_and_signal({"synth", "--config", config_, "--experts", "bf16", "--threads", "1", out_}, SIGKILL);
    ASSERT_TRUE(WIFSIGNALED(status));
    const std::vector<std::string> left = temp_files();
    ASSERT_EQ(left.size(), 1u);

    const std::string small = test::data_path("qwen3_moe_tiny") + "/config.json";
    ASSERT_EQ(mst_synthesize(small.c_str(), out_.c_str(), nullptr, nullptr), MST_OK) << mst_last_error();
    EXPECT_FALSE(fs::exists(left.front()));
    EXPECT_TRUE(temp_files().empty());
}

TEST_F(InterruptedWrites, OnlyTemporaryFilesNobodyHoldsAreRemoved) {
    const OutputFile live(out_);  // holds its lock, as a running writer does
    const std::string dead = out_ + ".tmp.Ab3dEf", other = out_ + ".tmp.notmine";
    std::ofstream(dead) << "left by a killed writer";
    std::ofstream(other) << "not a temporary name of ours";
    const StaleTempFiles stale = clear_stale_temp_files(out_);
    EXPECT_EQ(stale.removed, std::vector<std::string>{dead});
    EXPECT_EQ(stale.busy, std::vector<std::string>{live.temp_path()});
    EXPECT_FALSE(fs::exists(dead));
    EXPECT_TRUE(fs::exists(live.temp_path()));
    EXPECT_TRUE(fs::exists(other));
}

// 2^22 filler words take most of a minute and a gigabyte to make; a model that cannot
// fit on the disk (here 1.3 TB of experts) fails before.
TEST_F(InterruptedWrites, SynthChecksRoomBeforeMakingTheTokenizer) {
    std::string config = kLargeConfig;
    const auto set = [&](const std::string &key, const std::string &value) {
        const size_t at = config.find("\"" + key + "\": ");
        ASSERT_NE(at, std::string::npos) << key;
        const size_t begin = at + key.size() + 4, end = config.find_first_of(",}", begin);
        config.replace(begin, end - begin, value);
    };
    set("vocab_size", "4194304");
    set("hidden_size", "256");
    set("num_experts", "512");
    set("moe_intermediate_size", "8192");
    set("num_hidden_layers", "200");
    std::ofstream(config_) << config;
    mst_synthesize_params p;
    mst_synthesize_default_params(&p);
    p.experts = "bf16";
    const auto start = Clock::now();
    EXPECT_EQ(mst_synthesize(config_.c_str(), out_.c_str(), &p, nullptr), MST_ERR_IO);
    EXPECT_NE(std::string(mst_last_error()).find("not enough free space"), std::string::npos) << mst_last_error();
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 10.0);
    EXPECT_TRUE(temp_files().empty());
}

}  // namespace
}  // namespace mst
