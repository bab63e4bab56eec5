// File and read_text_file: reads deliver every byte or throw an mst::Error that names
// the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/error.h"
#include "core/file_io.h"
#include "safetensors_writer.h"
#include "test_paths.h"

namespace {

using mst::Error;
using mst::File;

class FileIoTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = mst::test::make_temp_dir("mst_file_io_");
        ASSERT_FALSE(dir_.empty());
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string dir_;
};

TEST_F(FileIoTest, ReadsWholeAndPartialRanges) {
    const std::string path = dir_ + "/data.bin";
    mst::test::write_file_bytes(path, "0123456789");
    const File file = File::open_read(path);
    EXPECT_TRUE(file.is_open());
    EXPECT_GE(file.fd(), 0);
    EXPECT_EQ(file.size(), 10u);
    EXPECT_EQ(file.path(), path);
    char buffer[4] = {};
    file.pread_exact(buffer, 4, 3);
    EXPECT_EQ(std::string(buffer, 4), "3456");
    file.pread_exact(buffer, 0, 10);  // an empty read at the end is fine
    file.pread_exact(buffer, 1, 9);
    EXPECT_EQ(buffer[0], '9');
}

TEST_F(FileIoTest, ReadPastEndIsTruncated) {
    const std::string path = dir_ + "/short.bin";
    mst::test::write_file_bytes(path, "abcdef");
    const File file = File::open_read(path);
    char buffer[16];
    try {
        file.pread_exact(buffer, 8, 2);
        FAIL() << "expected an error";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), MST_ERR_BAD_FORMAT);
        const std::string what = e.what();
        EXPECT_NE(what.find(path), std::string::npos) << what;
        EXPECT_NE(what.find("truncated: wanted 8 bytes at offset 2, file has 6"), std::string::npos) << what;
    }
    // An offset no off_t can hold is reported the same way, not wrapped around.
    EXPECT_THROW(file.pread_exact(buffer, 1, ~uint64_t(0)), Error);
}

TEST_F(FileIoTest, MissingFileAndDirectoryAreIoErrors) {
    const std::string missing = dir_ + "/nope.bin";
    try {
        File::open_read(missing);
        FAIL() << "expected an error";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), MST_ERR_IO);
        const std::string what = e.what();
        EXPECT_NE(what.find(missing), std::string::npos) << what;
        EXPECT_NE(what.find("No such file"), std::string::npos) << what;
    }
    try {
        File::open_read(dir_);
        FAIL() << "expected an error";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), MST_ERR_IO);
        EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
    }
}

TEST_F(FileIoTest, MoveTransfersTheDescriptor) {
    const std::string path = dir_ + "/m.bin";
    mst::test::write_file_bytes(path, "xy");
    File a = File::open_read(path);
    const int fd = a.fd();
    File b = std::move(a);
    EXPECT_FALSE(a.is_open());  // NOLINT(bugprone-use-after-move): the moved-from state is the point
    EXPECT_EQ(b.fd(), fd);
    File c;
    c = std::move(b);
    EXPECT_EQ(c.fd(), fd);
    EXPECT_EQ(c.size(), 2u);
    char buffer[1];
    EXPECT_THROW(b.pread_exact(buffer, 1, 0), Error);  // NOLINT(bugprone-use-after-move)
}

TEST_F(FileIoTest, ReadTextFileHonoursItsLimit) {
    const std::string path = dir_ + "/t.json";
    mst::test::write_file_bytes(path, "{\"a\": 1}");
    EXPECT_EQ(mst::read_text_file(path, 100), "{\"a\": 1}");
    EXPECT_EQ(mst::read_text_file(path, 8), "{\"a\": 1}");
    try {
        mst::read_text_file(path, 7);
        FAIL() << "expected an error";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), MST_ERR_BAD_FORMAT);
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    try {
        mst::read_text_file(dir_ + "/missing.json", 100);
        FAIL() << "expected an error";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), MST_ERR_IO);
    }
}

TEST(ErrnoText, NamesTheError) {
    EXPECT_NE(mst::errno_text(ENOENT).find("No such file"), std::string::npos);
    EXPECT_FALSE(mst::errno_text(99999).empty());
}

}  // namespace
