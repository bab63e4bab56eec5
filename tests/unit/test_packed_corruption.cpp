// Damaged packed files. A flipped byte inside an expert blob loads fine and fails, with
// MST_ERR_CHECKSUM naming the layer, expert, file and offset, the first time that expert
// is read (and every time after: a bad blob is never cached), while other experts and
// the session stay usable. A flipped byte in the header, metadata, index or (with
// checksums on) resident section fails the load; a truncated file fails it naming the
// expected and the actual size.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "experts/expert_store.h"
#include "expect_error.h"
#include "format/checkpoint.h"
#include "format/packed_format.h"
#include "format/resident_mapping.h"
#include "moestream.hpp"
#include "packed_test_support.h"
#include "storage/storage_tier.h"
#include "test_paths.h"

namespace mst {
namespace {

const std::vector<int32_t> kPrompt = {1, 87, 85, 259, 201, 39, 408, 262, 413, 412, 346, 329, 260, 577, 529, 524};
// Layer 0 of qwen3_moe_tiny has routed experts; expert 3 is the damaged one.
constexpr int kLayer = 0;
constexpr int kExpert = 3;

class PackedCorruption : public ::testing::Test {
protected:
    void SetUp() override {
        tmp_ = test::make_temp_dir("mst_corrupt_");
        ASSERT_FALSE(tmp_.empty());
        path_ = tmp_ + "/tiny.mst";
        test::convert_checkpoint_for_test(test::data_path("qwen3_moe_tiny"), path_, "q8");
        const auto checkpoint = Checkpoint::open(path_);
        header_ = checkpoint->packed()->header;
        blob_ = *checkpoint->packed()->experts.at(kLayer).at(kExpert).blob;
    }
    void TearDown() override { std::filesystem::remove_all(tmp_); }

    static mst_model_params params(bool verify = true) {
        mst_model_params p = mst::model_params();
        p.backend = "cpu";
        p.verify_checksums = verify ? 1 : 0;
        return p;
    }
    // Loads and returns the status; the message is in mst_last_error().
    mst_status load_status(bool verify = true) {
        const mst_model_params p = params(verify);
        mst_model *model = nullptr;
        const mst_status status = mst_model_load(path_.c_str(), &p, &model);
        mst_model_free(model);
        return status;
    }
    void expect_load_fails(std::initializer_list<mst_status> allowed, const std::string &part) {
        const mst_status status = load_status();
        EXPECT_NE(status, MST_OK);
        EXPECT_TRUE(std::find(allowed.begin(), allowed.end(), status) != allowed.end())
            << mst_status_string(status) << ": " << mst_last_error();
        EXPECT_NE(std::string(mst_last_error()).find(part), std::string::npos) << mst_last_error();
    }

    // The store a loaded model would build, over the packed file's experts, reading them
    // through `tier` (the mmap tier hashes blobs in place in its mapping, the others in
    // the buffers they read into).
    std::unique_ptr<ExpertStore> open_store(bool verify, const std::string &tier = "auto") {
        checkpoint_ = Checkpoint::open(path_);
        StorageOptions storage;
        storage.tier = tier;
        auto store = std::make_unique<ExpertStore>(open_storage(checkpoint_->files(), storage),
                                                   checkpoint_->packed()->experts, uint64_t(1) << 20);
        store->set_blob_reads(BlobReadOptions{verify, checkpoint_->files()});
        return store;
    }

    std::string tmp_, path_;
    PackedHeader header_;
    ExpertBlob blob_;
    std::unique_ptr<Checkpoint> checkpoint_;
};

TEST_F(PackedCorruption, FlippedBlobByteFailsOnlyThatExpertWhenRead) {
    test::flip_byte(path_, blob_.offset + blob_.stored_bytes / 2);
    for (const std::string tier : {"pread", "mmap"}) {
        SCOPED_TRACE(tier);
        std::unique_ptr<ExpertStore> store = open_store(true, tier);  // loading reads no blob
        ExpertIoStats io;
        const int32_t bad = kExpert, good = kExpert + 1;
        for (int attempt = 0; attempt < 2; ++attempt)  // never cached, so checked again
            test::expect_error([&] { store->fetch(kLayer, std::span<const int32_t>(&bad, 1), io); }, MST_ERR_CHECKSUM,
                               {"layer 0 expert 3", path_, "offset " + std::to_string(blob_.offset),
                                "checksum mismatch"});
        EXPECT_EQ(store->fetch(kLayer, std::span<const int32_t>(&good, 1), io).size(), 1u);
        const std::vector<int32_t> both = {good, bad};
        test::expect_error([&] { store->fetch(kLayer, both, io); }, MST_ERR_CHECKSUM, {"layer 0 expert 3"});
        EXPECT_EQ(store->fetch(kLayer, std::span<const int32_t>(&good, 1), io).size(), 1u);
        EXPECT_EQ(store->cache_stats().entries, 1u);  // only the good expert was ever cached
        // Checksums off: the damaged expert is read as it is.
        std::unique_ptr<ExpertStore> trusting = open_store(false, tier);
        EXPECT_EQ(trusting->fetch(kLayer, std::span<const int32_t>(&bad, 1), io).size(), 1u);
    }
}

// Through the mmap tier the good experts' views point into the file's mapping (no copy)
// and hold exactly the bytes the pread tier reads.
TEST_F(PackedCorruption, MappedBlobsMatchReadBlobs) {
    std::unique_ptr<ExpertStore> mapped = open_store(true, "mmap");
    std::unique_ptr<ExpertStore> read = open_store(true, "pread");
    ExpertIoStats io;
    const int32_t e = kExpert;
    const ExpertHandle a = mapped->fetch(kLayer, std::span<const int32_t>(&e, 1), io).front();
    const ExpertHandle b = read->fetch(kLayer, std::span<const int32_t>(&e, 1), io).front();
    EXPECT_EQ(a->buffer.size(), 0u);  // nothing copied
    ASSERT_EQ(a->parts.size(), b->parts.size());
    for (size_t i = 0; i < a->parts.size(); ++i) {
        const size_t bytes = size_t(dtype_row_bytes(a->parts[i].dtype, a->parts[i].cols) * a->parts[i].rows);
        EXPECT_EQ(std::memcmp(a->parts[i].data, b->parts[i].data, bytes), 0) << "part " << i;
        EXPECT_EQ(a->parts[i].expert_key, b->parts[i].expert_key);
    }
}

TEST_F(PackedCorruption, FlippedBlobByteFailsTheSessionThatReadsIt) {
    {
        // Precondition: the prompt routes tokens to every expert of layer 0.
        const mst::ModelHandle clean(path_, params());
        mst::SessionHandle session(clean);
        session.eval(kPrompt);
        mst_cache_stats stats{};
        stats.struct_size = sizeof stats;
        mst::check(mst_model_get_cache_stats(clean.get(), kLayer, &stats));
        ASSERT_EQ(stats.misses, 8u);
    }
    test::flip_byte(path_, blob_.offset + 7, 0x80);
    const mst::ModelHandle model(path_, params());  // loads fine
    mst::SessionHandle session(model);
    for (int attempt = 0; attempt < 2; ++attempt) {
        EXPECT_EQ(mst_session_eval(session.get(), kPrompt.data(), kPrompt.size()), MST_ERR_CHECKSUM);
        const std::string message = mst_last_error();
        for (const std::string &part : {std::string("layer 0 expert 3"), path_, std::string("offset")})
            EXPECT_NE(message.find(part), std::string::npos) << message;
        EXPECT_EQ(session.n_past(), 0u);  // the context is as it was
    }
    const mst::ModelHandle trusting(path_, params(false));
    mst::SessionHandle unchecked(trusting);
    unchecked.eval(kPrompt);
    EXPECT_EQ(unchecked.n_past(), kPrompt.size());
}

TEST_F(PackedCorruption, FlippedHeaderBytesFailTheLoad) {
    ASSERT_EQ(load_status(), MST_OK);
    // Magic, version, file size, each section's fields, flags and the checksum itself.
    for (uint64_t offset : {0, 3, 8, 17, 25, 33, 60, 88, 100, 112, 121}) {
        const std::string copy = tmp_ + "/copy.mst";
        std::filesystem::copy_file(path_, copy, std::filesystem::copy_options::overwrite_existing);
        test::flip_byte(copy, offset);
        const mst_model_params p = params();
        mst_model *model = nullptr;
        EXPECT_NE(mst_model_load(copy.c_str(), &p, &model), MST_OK) << "byte " << offset;
        mst_model_free(model);
    }
}

TEST_F(PackedCorruption, FlippedIndexByteFailsTheLoad) {
    test::flip_byte(path_, header_.index.offset + header_.index.bytes / 3);
    expect_load_fails({MST_ERR_CHECKSUM}, "index section checksum mismatch");
}

TEST_F(PackedCorruption, FlippedMetadataByteFailsTheLoad) {
    test::flip_byte(path_, header_.metadata.offset + 20);
    expect_load_fails({MST_ERR_CHECKSUM}, "metadata section checksum mismatch");
}

TEST_F(PackedCorruption, FlippedResidentByteFailsTheLoadUnlessUnchecked) {
    test::flip_byte(path_, header_.resident.offset + header_.resident.bytes / 2, 0x10);
    expect_load_fails({MST_ERR_CHECKSUM}, "resident section checksum mismatch");
    EXPECT_EQ(load_status(false), MST_OK) << mst_last_error();
}

// The resident section is used in place from its mapping, checked before the mapping is
// handed out; the tensors read through it are the file's bytes.
TEST_F(PackedCorruption, ResidentMappingIsCheckedAndServesTheFileBytes) {
    {
        const auto checkpoint = Checkpoint::open(path_);
        const TensorInfo &t = checkpoint->tensors().front();
        std::vector<uint8_t> direct(size_t(t.nbytes)), through_mapping(size_t(t.nbytes));
        checkpoint->read(t, direct.data());
        EXPECT_EQ(checkpoint->resident_mapping(), nullptr);
        const File file = File::open_read(path_);
        const ResidentMapping mapping(file, header_.resident.offset, header_.resident.bytes, true,
                                      header_.resident.xxh64);
        const uint8_t *mapped = mapping.find(t.offset, t.nbytes);
        ASSERT_NE(mapped, nullptr);
        EXPECT_EQ(std::memcmp(mapped, direct.data(), direct.size()), 0);
        // Outside the section: not served.
        EXPECT_EQ(mapping.find(header_.resident.offset + header_.resident.bytes, 1), nullptr);
        EXPECT_EQ(mapping.find(header_.resident.offset, header_.resident.bytes + 1), nullptr);
        EXPECT_EQ(mapping.find(header_.resident.offset - 1, 1), nullptr);
        checkpoint->map_resident(true);
        ASSERT_NE(checkpoint->resident_mapping(), nullptr);
        checkpoint->read(t, through_mapping.data());
        EXPECT_EQ(through_mapping, direct);
    }
    test::flip_byte(path_, header_.resident.offset + 1, 0x01);
    const File file = File::open_read(path_);
    test::expect_error([&] { ResidentMapping(file, header_.resident.offset, header_.resident.bytes, true,
                                             header_.resident.xxh64); },
                       MST_ERR_CHECKSUM, {path_, "resident section checksum mismatch",
                                          "offset " + std::to_string(header_.resident.offset)});
    const ResidentMapping unchecked(file, header_.resident.offset, header_.resident.bytes, false,
                                    header_.resident.xxh64);
    EXPECT_NE(unchecked.find(header_.resident.offset, 2), nullptr);
}

TEST_F(PackedCorruption, TruncatedFileNamesBothSizes) {
    const uint64_t size = std::filesystem::file_size(path_);
    for (const uint64_t keep : {size - 4096, size / 2, uint64_t(200)}) {
        std::filesystem::resize_file(path_, keep);
        expect_load_fails({MST_ERR_BAD_FORMAT}, "truncated");
        const std::string message = mst_last_error();
        EXPECT_NE(message.find(std::to_string(size)), std::string::npos) << message;
        EXPECT_NE(message.find(std::to_string(keep)), std::string::npos) << message;
    }
    std::filesystem::resize_file(path_, 100);
    expect_load_fails({MST_ERR_BAD_FORMAT}, "too short");
}

TEST_F(PackedCorruption, AppendedBytesFailTheLoad) {
    const uint64_t size = std::filesystem::file_size(path_);
    std::filesystem::resize_file(path_, size + 10);
    expect_load_fails({MST_ERR_BAD_FORMAT}, std::to_string(size + 10));
}

}  // namespace
}  // namespace mst
