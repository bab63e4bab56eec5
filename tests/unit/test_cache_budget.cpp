// The default expert cache budget: from the memory the process may use (MemAvailable and
// the cgroup limits, read here from files of the test's own), less the resident weights
// and a margin, and never below one token's experts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>

#include "core/process_memory.h"
#include "experts/cache_budget.h"
#include "moestream.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMiB = 1ull << 20, kGiB = 1ull << 30;

class FakeProc : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = mst::test::make_temp_dir("mst_cache_budget_");
        ASSERT_FALSE(root_.empty());
        src_.meminfo = root_ + "/meminfo";
        src_.self_cgroup = root_ + "/cgroup";
        src_.cgroup_root = root_ + "/sys";
        src_.self_status = root_ + "/status";
        write("meminfo", "MemTotal: 16777216 kB\nMemFree: 1000 kB\nMemAvailable: 8388608 kB\n");
        write("status", "Name: test\nVmHWM: 204800 kB\nVmRSS: 102400 kB\n");
    }
    void TearDown() override { fs::remove_all(root_); }
    void write(const std::string &rel, const std::string &text) {
        const fs::path p = fs::path(root_) / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p) << text;
    }
    std::string root_;
    mst::MemorySources src_;
};

TEST_F(FakeProc, NoCgroupLimitLeavesMemAvailable) {
    write("cgroup", "0::/\n");
    write("sys/memory.max", "max\n");
    const mst::MemoryLimits l = mst::read_memory_limits(src_);
    EXPECT_EQ(l.mem_available, 8 * kGiB);
    EXPECT_EQ(l.cgroup_limit, mst::MemoryLimits::kNoLimit);
    EXPECT_EQ(l.rss, 100 * kMiB);
    EXPECT_EQ(mst::memory_headroom(l), 8 * kGiB);
}

TEST_F(FakeProc, ParentCgroupLimitBindsTheChild) {
    write("cgroup", "0::/user.slice/app\n");
    write("sys/user.slice/memory.max", "3221225472\n");
    write("sys/user.slice/app/memory.max", "max\n");
    const mst::MemoryLimits l = mst::read_memory_limits(src_);
    EXPECT_EQ(l.cgroup_limit, 3 * kGiB);
    EXPECT_EQ(mst::memory_headroom(l), 3 * kGiB - 100 * kMiB);
}

TEST_F(FakeProc, CgroupV1MemoryController) {
    write("cgroup", "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n");
    write("sys/memory/docker/abc/memory.limit_in_bytes", "2147483648\n");
    EXPECT_EQ(mst::read_memory_limits(src_).cgroup_limit, 2 * kGiB);
}

// Qwen3-30B-A3B at 4-bit experts: 48 MoE layers, top-8 of 128, 2.95 MB per expert.
constexpr uint64_t kExpert = 2949120, kOneToken = 8 * 48 * kExpert, kAllExperts = 128 * 48 * kExpert;

TEST(CacheBudget, QwenShapeInsideThreeGiB) {
    const uint64_t headroom = 3 * kGiB - 100 * kMiB, resident = 1000 * kMiB;
    const mst::CacheBudget b = mst::default_cache_budget({headroom, resident, kOneToken, kAllExperts});
    EXPECT_EQ(mst::cache_budget_margin(headroom), headroom / 8);
    EXPECT_EQ(b.bytes, headroom - resident - headroom / 8);
    EXPECT_GT(b.bytes, kOneToken);  // the fixed 1 GiB default was below one token's experts
    EXPECT_GT(b.bytes, kGiB);
}

TEST(CacheBudget, NeverBelowOneTokenNorAboveAllExperts) {
    const mst::CacheBudget small = mst::default_cache_budget({2 * kGiB, 1500 * kMiB, kOneToken, kAllExperts});
    EXPECT_EQ(small.bytes, kOneToken);
    EXPECT_NE(small.why.find("one token"), std::string::npos) << small.why;
    const mst::CacheBudget large = mst::default_cache_budget({512 * kGiB, kGiB, kOneToken, kAllExperts});
    EXPECT_EQ(large.bytes, kAllExperts);
    const mst::CacheBudget unknown = mst::default_cache_budget({0, kGiB, kOneToken, kAllExperts});
    EXPECT_EQ(unknown.bytes, kOneToken);  // the 1 GiB fallback, raised
    EXPECT_EQ(mst::default_cache_budget({0, 0, 1000, 100 * kGiB}).bytes, kGiB);
    EXPECT_EQ(mst::cache_budget_margin(kGiB), 256 * kMiB);
}

struct Warnings {
    Warnings() { mst_log_set(&Warnings::add, MST_LOG_WARN, this); }
    ~Warnings() { mst_log_set(nullptr, MST_LOG_WARN, nullptr); }
    static void add(mst_log_level, const char *m, void *self) {
        auto *w = static_cast<Warnings *>(self);
        const std::lock_guard<std::mutex> lock(w->mutex);
        w->text += m;
    }
    std::mutex mutex;
    std::string text;
};

TEST(CacheBudgetLoad, DefaultIsAutoAndABudgetBelowOneTokenIsWarnedAbout) {
    mst_model_params p;
    mst_model_default_params(&p);
    EXPECT_EQ(p.expert_cache_bytes, MST_EXPERT_CACHE_AUTO);
    const std::string dir = mst::test::data_path("qwen3_moe_tiny");
    mst_model *model = nullptr;
    {
        Warnings w;
        ASSERT_EQ(mst_model_load(dir.c_str(), &p, &model), MST_OK) << mst_last_error();
        EXPECT_EQ(w.text.find("below one token"), std::string::npos) << w.text;
    }
    mst_model_info info{};
    info.struct_size = sizeof info;
    ASSERT_EQ(mst_model_get_info(model, &info), MST_OK);
    // The tiny model's experts all fit in any machine's memory: the budget holds them all.
    EXPECT_EQ(info.expert_cache_bytes, info.expert_bytes_total);
    mst_model_free(model);

    p.expert_cache_bytes = info.expert_bytes_per_token - 1;
    Warnings w;
    ASSERT_EQ(mst_model_load(dir.c_str(), &p, &model), MST_OK) << mst_last_error();
    EXPECT_NE(w.text.find("below one token's experts"), std::string::npos) << w.text;
    mst_model_free(model);
}

}  // namespace
