// The "auto" storage tier follows the page cache: mmap (experts used in place, no copy)
// when it holds most of the files' pages, direct (O_DIRECT) when they must come from the
// device.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "storage/auto_tier.h"
#include "storage/page_residency.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

TEST(AutoTierRule, FollowsThePageCache) {
    EXPECT_EQ(mst::choose_auto_tier({100, 90}, false).tier, "mmap");
    EXPECT_EQ(mst::choose_auto_tier({100, 50}, false).tier, "mmap");
    EXPECT_EQ(mst::choose_auto_tier({100, 49}, false).tier, "direct");
    EXPECT_EQ(mst::choose_auto_tier({100, 0}, false).tier, "direct");
    EXPECT_EQ(mst::choose_auto_tier({0, 0}, false).tier, "direct");  // nothing sampled: assume cold
    EXPECT_EQ(mst::choose_auto_tier({100, 100}, true).tier, "direct");  // direct_io asked for
    EXPECT_NE(mst::choose_auto_tier({100, 90}, false).why.find("90%"), std::string::npos);
}

class AutoTierFile : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = mst::test::make_temp_dir("mst_auto_tier_");
        ASSERT_FALSE(dir_.empty());
        path_ = dir_ + "/experts.bin";
        std::ofstream out(path_, std::ios::binary);
        const std::string block(1 << 20, 'e');
        for (int i = 0; i < 16; ++i) out.write(block.data(), std::streamsize(block.size()));
    }
    void TearDown() override { fs::remove_all(dir_); }

    // Written back and dropped: the file's pages leave the page cache.
    void drop_from_page_cache() {
        const int fd = ::open(path_.c_str(), O_RDONLY);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::fdatasync(fd), 0);
        ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
        ::close(fd);
    }
    void read_whole_file() {
        std::ifstream in(path_, std::ios::binary);
        std::vector<char> buf(1 << 20);
        while (in.read(buf.data(), std::streamsize(buf.size()))) {
        }
    }
    std::string open_auto_name() {
        mst::StorageOptions o;
        o.tier = "auto";
        return mst::open_storage({path_}, o)->name();
    }

    std::string dir_, path_;
};

TEST_F(AutoTierFile, OutOfThePageCacheReadsDirect) {
    drop_from_page_cache();
    const mst::PageResidency r = mst::sample_page_residency({path_});
    EXPECT_EQ(r.sampled, 1024u);
    EXPECT_LT(r.fraction(), 0.5) << r.resident << " of " << r.sampled;
    EXPECT_EQ(open_auto_name(), "direct");
}

TEST_F(AutoTierFile, InThePageCacheReadsThroughIt) {
    drop_from_page_cache();
    read_whole_file();
    const mst::PageResidency r = mst::sample_page_residency({path_});
    EXPECT_GT(r.fraction(), 0.9) << r.resident << " of " << r.sampled;
    EXPECT_EQ(open_auto_name(), "mmap");
}

TEST_F(AutoTierFile, SamplingReadsNothing) {
    drop_from_page_cache();
    for (int i = 0; i < 3; ++i) mst::sample_page_residency({path_});
    EXPECT_LT(mst::sample_page_residency({path_}).fraction(), 0.5);
    EXPECT_EQ(mst::sample_page_residency({dir_ + "/missing"}).sampled, 0u);
}

}  // namespace
