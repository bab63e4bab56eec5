// Every storage tier reads the same bytes: random batches straight from a tier, expert
// parts at unaligned offsets through the expert store (which widens reads for O_DIRECT
// and maps in place for mmap), errors that name the file, offset and errno, mapped
// experts given back when the cache lets go, and bitwise-identical logits for every tier
// and cache budget on the reference checkpoints.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "core/process_memory.h"
#include "expect_error.h"
#include "experts/expert_store.h"
#include "golden.h"
#include "moestream.hpp"
#include "storage/storage_tier.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;

struct TierCase {
    std::string tier;
    bool direct_io = false;
    std::string label;
};

// Every tier this machine offers, and uring once more with O_DIRECT.
std::vector<TierCase> tier_cases() {
    std::vector<TierCase> cases;
    for (const std::string &tier : mst::available_storage_tiers()) {
        if (tier == "auto" || tier == "fault") continue;
        cases.push_back({tier, false, tier});
        if (tier == "uring") cases.push_back({tier, true, "uring_direct"});
    }
    return cases;
}

std::string tier_label(const ::testing::TestParamInfo<TierCase> &param) { return param.param.label; }

// How GoogleTest (and so ctest's test names) show a tier case.
void PrintTo(const TierCase &c, std::ostream *os) { *os << c.label; }

// Test files live under the working directory (the build tree): the system temp dir
// may be tmpfs, where O_DIRECT is refused or means nothing.
class ScratchDir {
public:
    ScratchDir() {
        std::string pattern = (fs::current_path() / "storage_tiers_XXXXXX").string();
        if (mkdtemp(pattern.data())) path_ = pattern;
    }
    ~ScratchDir() {
        std::error_code ec;
        if (!path_.empty()) fs::remove_all(path_, ec);
    }
    const std::string &path() const { return path_; }

    // Writes `size` random bytes to `name`; returns the path and fills `bytes`.
    std::string write_random(const std::string &name, size_t size, uint32_t seed, std::vector<uint8_t> &bytes) const {
        bytes.resize(size);
        std::mt19937 rng(seed);
        for (auto &b : bytes) b = uint8_t(rng());
        const std::string file = path_ + "/" + name;
        std::ofstream out(file, std::ios::binary);
        out.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
        return file;
    }

private:
    std::string path_;
};

class StorageTiers : public ::testing::TestWithParam<TierCase> {
protected:
    void SetUp() override {
        ASSERT_FALSE(scratch_.path().empty()) << "cannot create a scratch directory under " << fs::current_path();
        // Sizes that end inside a 4 KiB block, so that widened reads meet the end of file.
        paths_ = {scratch_.write_random("a.bin", (3 << 20) + 1234, 1, bytes_[0]),
                  scratch_.write_random("b.bin", (1 << 20) + 77, 2, bytes_[1])};
    }

    mst::StorageOptions options() const {
        mst::StorageOptions o;
        o.tier = GetParam().tier;
        o.direct_io = GetParam().direct_io;
        return o;
    }

    // The tier, or nullptr with `skip` set when the file system refuses O_DIRECT.
    std::unique_ptr<mst::StorageTier> open(std::string &skip) const {
        try {
            return mst::open_storage(paths_, options());
        } catch (const mst::Error &e) {
            if (e.code() != MST_ERR_UNSUPPORTED) throw;
            skip = std::string("the file system under ") + scratch_.path() + " refuses O_DIRECT: " + e.what();
            return nullptr;
        }
    }

    ScratchDir scratch_;
    std::vector<std::string> paths_;
    std::vector<uint8_t> bytes_[2];
};

#define OPEN_TIER_OR_SKIP(var)                   \
    std::string skip_reason_;                    \
    auto var = open(skip_reason_);               \
    if (!var) GTEST_SKIP() << skip_reason_;

TEST_P(StorageTiers, ReadsRandomBatches) {
    OPEN_TIER_OR_SKIP(tier);
    const uint64_t align = tier->alignment();
    std::mt19937_64 rng(42);
    for (int batch = 0; batch < 24; ++batch) {
        const size_t n = 1 + rng() % 16;
        std::vector<mst::ReadRequest> reads(n);
        std::vector<mst::AlignedBuffer> buffers;
        for (size_t i = 0; i < n; ++i) {
            mst::ReadRequest &r = reads[i];
            r.file = uint32_t(rng() % 2);
            const uint64_t size = bytes_[r.file].size();
            uint64_t length = 1 + rng() % (256 << 10);
            uint64_t offset = rng() % (size - length);
            if (i == 0 && batch % 4 == 0) offset = size - length;  // ends exactly at the end of the file
            r.padding = 0;
            if (align > 1) {
                // Raw reads must be aligned: widen by hand, as the expert store does.
                const uint64_t begin = offset / align * align;
                const uint64_t end = (offset + length + align - 1) / align * align;
                r.padding = end - (offset + length);
                offset = begin;
                length = end - begin;
            }
            r.offset = offset;
            r.length = length;
            buffers.emplace_back(length, "test buffer");
            r.dst = buffers.back().data();
            r.what = "request " + std::to_string(i);
        }
        tier->read_batch(reads);
        for (const mst::ReadRequest &r : reads) {
            const uint64_t valid = std::min<uint64_t>(r.length, bytes_[r.file].size() - r.offset);
            ASSERT_GE(valid, r.length - r.padding);
            ASSERT_EQ(std::memcmp(r.dst, bytes_[r.file].data() + r.offset, valid), 0)
                << r.what << " of batch " << batch << ": " << r.length << " bytes at " << r.offset << " of file "
                << r.file;
        }
    }
}

// Experts whose parts sit at unaligned offsets, adjacent or apart, in either file, one
// ending exactly at the end of a file: every view must show the file's bytes.
std::vector<std::vector<mst::ExpertLayout>> scattered_layouts(const std::vector<uint8_t> (&bytes)[2]) {
    std::mt19937_64 rng(7);
    std::vector<mst::ExpertLayout> experts(12);
    for (size_t e = 0; e < experts.size(); ++e) {
        uint64_t next = 0;
        for (int p = 0; p < 3; ++p) {
            mst::ExpertMatrix m;
            m.dtype = mst::DType::BF16;
            m.rows = int64_t(1 + rng() % 64);
            m.cols = int64_t(1 + rng() % 1500);
            m.file = uint32_t(rng() % 2);
            const uint64_t size = bytes[m.file].size();
            const bool adjacent = p > 0 && e % 3 == 0 && experts[e].parts.back().file == m.file;
            m.offset = adjacent ? next : rng() % (size - m.nbytes());
            if (m.offset + m.nbytes() > size) m.offset = rng() % (size - m.nbytes());
            if (e == 5 && p == 2) m.offset = size - m.nbytes();
            next = m.offset + m.nbytes();
            experts[e].parts.push_back(m);
        }
    }
    return {experts};
}

void expect_views_match(const mst::ExpertLayout &layout, const mst::ExpertWeights &w,
                        const std::vector<uint8_t> (&bytes)[2], const std::string &what) {
    ASSERT_EQ(w.parts.size(), layout.parts.size()) << what;
    for (size_t p = 0; p < layout.parts.size(); ++p) {
        const mst::ExpertMatrix &m = layout.parts[p];
        EXPECT_EQ(w.parts[p].rows, m.rows);
        EXPECT_EQ(w.parts[p].cols, m.cols);
        EXPECT_EQ(std::memcmp(w.parts[p].data, bytes[m.file].data() + m.offset, m.nbytes()), 0)
            << what << " part " << p << " (" << m.nbytes() << " bytes at " << m.offset << " of file " << m.file
            << ")";
    }
}

TEST_P(StorageTiers, StoreWidensAndMapsUnalignedParts) {
    for (uint64_t budget : {uint64_t(0), uint64_t(1) << 30}) {
        OPEN_TIER_OR_SKIP(tier);
        const bool maps = GetParam().tier == "mmap";
        const size_t align = tier->alignment();
        auto layouts = scattered_layouts(bytes_);
        const auto expected = layouts;
        mst::ExpertStore store(std::move(tier), std::move(layouts), budget);
        std::vector<int32_t> all;
        for (int e = 0; e < store.n_experts(0); ++e) all.push_back(e);
        for (int round = 0; round < 2; ++round) {  // the second round hits the cache when there is one
            mst::ExpertIoStats io;
            const std::vector<mst::ExpertHandle> got = store.fetch(0, all, io);
            uint64_t layout_bytes = 0;
            for (size_t e = 0; e < got.size(); ++e) {
                expect_views_match(expected[0][e], *got[e], bytes_, "expert " + std::to_string(e));
                layout_bytes += expected[0][e].nbytes();
                if (maps) {
                    EXPECT_EQ(got[e]->buffer.size(), 0u);
                }
                if (align > 1) {
                    EXPECT_EQ(reinterpret_cast<uintptr_t>(got[e]->buffer.data()) % align, 0u);
                }
            }
            // Mapped bytes are the file's pages, not allocations of ours.
            if (maps) {
                EXPECT_EQ(store.live_expert_bytes(), 0u);
            } else {
                EXPECT_GE(store.live_expert_bytes(), layout_bytes);
            }
            if (round == 1 && budget > 0) {
                EXPECT_EQ(io.hits, all.size());
            } else {
                EXPECT_EQ(io.misses, all.size());
            }
        }
    }
}

TEST_P(StorageTiers, ReadPastEndNamesFileOffsetAndRequest) {
    OPEN_TIER_OR_SKIP(tier);
    const uint64_t align = tier->alignment();
    const uint64_t block = std::max<uint64_t>(align, 4096);
    mst::AlignedBuffer buffer(2 * block, "test buffer");
    const uint64_t size = bytes_[1].size();
    mst::ReadRequest r{1, (size / block) * block, 2 * block, buffer.data(), "layer 9 expert 33"};
    mst::test::expect_error([&] { tier->read_batch(std::span(&r, 1)); }, MST_ERR_BAD_FORMAT,
                            {"layer 9 expert 33", paths_[1], "offset", std::to_string(r.offset)});
    // The tier is still usable after the failure.
    mst::ReadRequest ok{0, 0, block, buffer.data(), "after the error"};
    tier->read_batch(std::span(&ok, 1));
    EXPECT_EQ(std::memcmp(buffer.data(), bytes_[0].data(), block), 0);
}

TEST_P(StorageTiers, ExpertPastEndIsReportedByTheStore) {
    OPEN_TIER_OR_SKIP(tier);
    mst::ExpertLayout bad;
    const uint64_t size = bytes_[0].size();
    bad.parts = {mst::ExpertMatrix{0, size - 100, mst::DType::BF16, 10, 10}};
    mst::ExpertStore store(std::move(tier), {{bad}}, 1 << 20);
    mst::ExpertIoStats io;
    const int32_t expert = 0;
    mst::test::expect_error([&] { store.fetch(0, std::span(&expert, 1), io); }, MST_ERR_BAD_FORMAT,
                            {"layer 0 expert 0", paths_[0], std::to_string(size)});
}

TEST_P(StorageTiers, UnknownFileIndexIsAnArgumentError) {
    OPEN_TIER_OR_SKIP(tier);
    mst::AlignedBuffer buffer(4096, "test buffer");
    mst::ReadRequest r{7, 0, 4096, buffer.data(), "layer 1 expert 2"};
    mst::test::expect_error([&] { tier->read_batch(std::span(&r, 1)); }, MST_ERR_INVALID_ARGUMENT,
                            {"layer 1 expert 2", "file #7"});
}

INSTANTIATE_TEST_SUITE_P(AllTiers, StorageTiers, ::testing::ValuesIn(tier_cases()),
                         tier_label);

std::vector<TierCase> kernel_read_cases() {
    std::vector<TierCase> cases;
    for (const TierCase &c : tier_cases())
        if (c.tier != "mmap") cases.push_back(c);
    return cases;
}

// Tiers whose reads go through the kernel: a bad destination is EFAULT, an error with
// errno text; mmap copies in user space, where a bad destination is a crash instead.
class KernelReadTiers : public StorageTiers {};

TEST_P(KernelReadTiers, BadBufferNamesErrnoFileAndOffset) {
    OPEN_TIER_OR_SKIP(tier);
    const size_t page = 4096;
    void *guard = ::mmap(nullptr, 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(guard, MAP_FAILED);
    mst::ReadRequest r{0, 8192, 2 * page, guard, "layer 4 expert 5"};
    mst::test::expect_error([&] { tier->read_batch(std::span(&r, 1)); }, MST_ERR_IO,
                            {"layer 4 expert 5", paths_[0], "offset 8192", "Bad address"});
    ::munmap(guard, 2 * page);
    // One batch's failure leaves the next one unharmed (uring rebuilds nothing it needs).
    mst::AlignedBuffer buffer(2 * page, "test buffer");
    mst::ReadRequest ok{0, 8192, 2 * page, buffer.data(), "after the error"};
    tier->read_batch(std::span(&ok, 1));
    EXPECT_EQ(std::memcmp(buffer.data(), bytes_[0].data() + 8192, 2 * page), 0);
}

INSTANTIATE_TEST_SUITE_P(AllTiers, KernelReadTiers, ::testing::ValuesIn(kernel_read_cases()),
                         tier_label);

// O_DIRECT tiers: a request off the alignment fails with the kernel's EINVAL, named.
class DirectTiers : public StorageTiers {};

TEST_P(DirectTiers, RejectUnalignedRequests) {
    OPEN_TIER_OR_SKIP(tier);
    ASSERT_GT(tier->alignment(), 1u);
    mst::AlignedBuffer buffer(3 * 4096, "test buffer");
    mst::ReadRequest r{0, 100, 4096, buffer.data(), "layer 2 expert 3"};
    mst::test::expect_error([&] { tier->read_batch(std::span(&r, 1)); }, MST_ERR_IO,
                            {"layer 2 expert 3", paths_[0], "offset 100", "Invalid argument"});
}

std::vector<TierCase> direct_cases() {
    std::vector<TierCase> cases;
    for (const TierCase &c : tier_cases())
        if (c.tier == "direct" || c.direct_io) cases.push_back(c);
    return cases;
}

INSTANTIATE_TEST_SUITE_P(AllTiers, DirectTiers, ::testing::ValuesIn(direct_cases()),
                         tier_label);

TEST(StorageRegistry, ListsUringExactlyWhenItWorks) {
    const auto tiers = mst::available_storage_tiers();
    const bool listed = std::find(tiers.begin(), tiers.end(), "uring") != tiers.end();
    std::string why;
    EXPECT_EQ(listed, mst::io_uring_available(&why)) << why;
    for (const char *always : {"auto", "mmap", "pread", "direct"})
        EXPECT_NE(std::find(tiers.begin(), tiers.end(), always), tiers.end()) << always;
}

// The uring tier where built and working; a build without liburing has no uring cases
// above, so this says so instead of passing in silence.
TEST(StorageRegistry, UringTierWhereBuilt) {
    std::string why;
    if (!mst::io_uring_available(&why)) GTEST_SKIP() << "the uring storage tier is not tested: " << why;
    EXPECT_TRUE(mst::uring_tier_built());
}

// Without liburing, `uring` is an unsupported tier that says why (`auto` never picks it:
// storage/auto_tier.h).
TEST(StorageRegistry, NoUringTierWithoutLiburing) {
    if (mst::uring_tier_built()) GTEST_SKIP() << "this build has the uring tier (liburing found)";
    std::string why;
    EXPECT_FALSE(mst::io_uring_available(&why));
    EXPECT_NE(why.find("liburing"), std::string::npos) << why;
    const auto tiers = mst::available_storage_tiers();
    EXPECT_EQ(std::find(tiers.begin(), tiers.end(), "uring"), tiers.end());
    mst::StorageOptions o;
    o.tier = "uring";
    mst::test::expect_error(
        [&] { mst::open_storage({mst::test::data_path("qwen3_moe_tiny/model.safetensors")}, o); },
        MST_ERR_UNSUPPORTED, {"uring", "liburing"});
}

TEST(StorageRegistry, RejectsBadOptions) {
    const std::vector<std::string> files = {mst::test::data_path("qwen3_moe_tiny/model.safetensors")};
    mst::StorageOptions o;
    o.tier = "mmap";
    o.direct_io = true;
    mst::test::expect_error([&] { mst::open_storage(files, o); }, MST_ERR_INVALID_ARGUMENT, {"mmap", "O_DIRECT"});
    o = {};
    o.queue_depth = 0;
    mst::test::expect_error([&] { mst::open_storage(files, o); }, MST_ERR_INVALID_ARGUMENT, {"queue depth"});
    o = {};
    o.tier = "floppy";
    mst::test::expect_error([&] { mst::open_storage(files, o); }, MST_ERR_INVALID_ARGUMENT,
                            {"floppy", "pread", "mmap"});
    o = {};
    o.tier = "pread";
    mst::test::expect_error([&] { mst::open_storage({"/nonexistent/model.safetensors"}, o); }, MST_ERR_IO,
                            {"/nonexistent/model.safetensors", "No such file"});
}

// n experts of 8 MiB each (one 2048 x 2048 bf16 matrix), back to back in file 0.
std::vector<mst::ExpertLayout> eight_mib_experts(size_t n) {
    std::vector<mst::ExpertLayout> experts(n);
    for (size_t e = 0; e < n; ++e)
        experts[e].parts = {mst::ExpertMatrix{0, uint64_t(e) << 23, mst::DType::BF16, 2048, 2048}};
    return experts;
}

// A mapped expert counts against the cache budget by its size, and once the cache lets
// go of it the tier gives its pages back: the process's resident set falls again.
TEST(MmapTier, ReleasedExpertsLeaveTheResidentSet) {
    ScratchDir scratch;
    ASSERT_FALSE(scratch.path().empty());
    std::vector<uint8_t> bytes;
    const std::string path = scratch.write_random("experts.bin", 32 << 20, 3, bytes);
    const std::vector<mst::ExpertLayout> experts = eight_mib_experts(4);
    mst::StorageOptions o;
    o.tier = "mmap";
    o.willneed = false;  // plain faults: a fetch alone does not bring the second expert in
    mst::ExpertStore store(mst::open_storage({path}, o), {experts}, 12 << 20);  // room for one expert

    auto touch = [](const mst::ExpertHandle &h) {
        uint64_t sum = 0;
        const auto *p = static_cast<const uint8_t *>(h->parts[0].data);
        for (size_t i = 0; i < (8u << 20); i += 4096) sum += p[i];
        return sum;
    };
    mst::ExpertIoStats io;
    const int32_t first = 0, second = 1;
    uint64_t before = 0, touched = 0, after = 0, sum = 0;
    {
        before = mst::read_process_memory().rss_bytes;
        const auto h = store.fetch(0, std::span(&first, 1), io);
        sum += touch(h[0]);
        touched = mst::read_process_memory().rss_bytes;
    }
    {
        const auto h = store.fetch(0, std::span(&second, 1), io);  // evicts expert 0
        after = mst::read_process_memory().rss_bytes;
        sum += touch(h[0]);
    }
    if (before == 0) GTEST_SKIP() << "the resident set size is not readable here (" << sum << ")";
    EXPECT_GE(touched, before + (6u << 20)) << "touching an 8 MiB mapped expert should fault it in";
    EXPECT_LE(after, touched - (6u << 20)) << "the evicted expert's pages should have left the resident set";
    const mst::ExpertCacheStats cache = store.cache_stats();
    EXPECT_EQ(cache.evictions, 1u);
    EXPECT_EQ(cache.bytes_held, 8u << 20);
    EXPECT_EQ(store.live_expert_bytes(), 0u);
}

// A file cut after it was mapped: fetching an expert past the new end is an error naming
// the expert and "truncated" (a touch of its lost pages would be SIGBUS), the experts
// still inside the file are served, and once the file is whole again so is the expert.
TEST(MmapTier, ExpertTruncatedAfterMappingIsAnErrorNotASignal) {
    ScratchDir scratch;
    ASSERT_FALSE(scratch.path().empty());
    std::vector<uint8_t> bytes;
    const std::string path = scratch.write_random("experts.bin", 16 << 20, 5, bytes);
    mst::StorageOptions o;
    o.tier = "mmap";
    mst::ExpertStore store(mst::open_storage({path}, o), {eight_mib_experts(2)}, 0);
    std::filesystem::resize_file(path, 12 << 20);  // expert 1 loses its second half
    mst::ExpertIoStats io;
    const int32_t first = 0, second = 1;
    mst::test::expect_error([&] { store.fetch(0, std::span(&second, 1), io); }, MST_ERR_BAD_FORMAT,
                            {"layer 0 expert 1", "truncated", path});
    const auto h = store.fetch(0, std::span(&first, 1), io);
    EXPECT_EQ(std::memcmp(h[0]->parts[0].data, bytes.data(), 8 << 20), 0);
    {
        std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);  // the same inode
        f.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
    }
    const auto again = store.fetch(0, std::span(&second, 1), io);
    EXPECT_EQ(std::memcmp(again[0]->parts[0].data, bytes.data() + (8 << 20), 8 << 20), 0);
}

// With WILLNEED (the default) the store's I/O thread faults a mapped expert in before
// the fetch returns, so compute does not; without it, the fetch leaves the pages alone.
TEST(MmapTier, WillneedFetchBringsTheExpertIn) {
    ScratchDir scratch;
    ASSERT_FALSE(scratch.path().empty());
    std::vector<uint8_t> bytes;
    const std::string path = scratch.write_random("experts.bin", 16 << 20, 5, bytes);
    const std::vector<mst::ExpertLayout> experts = eight_mib_experts(2);
    for (bool willneed : {true, false}) {
        mst::StorageOptions o;
        o.tier = "mmap";
        o.willneed = willneed;
        mst::ExpertStore store(mst::open_storage({path}, o), {experts}, 0);
        const int32_t expert = willneed ? 0 : 1;
        mst::ExpertIoStats io;
        const uint64_t before = mst::read_process_memory().rss_bytes;
        const auto h = store.fetch(0, std::span(&expert, 1), io);
        const uint64_t after = mst::read_process_memory().rss_bytes;
        if (before == 0) GTEST_SKIP() << "the resident set size is not readable here";
        if (willneed) {
            EXPECT_GE(after, before + (6u << 20)) << "the fetch should have faulted the 8 MiB expert in";
        } else {
            EXPECT_LT(after, before + (2u << 20)) << "without WILLNEED the fetch should not touch the pages";
        }
        EXPECT_EQ(std::memcmp(h[0]->parts[0].data, bytes.data() + (uint64_t(expert) << 23), 8u << 20), 0);
    }
}

// The logits of every tier and cache budget are bitwise those of pread with a large
// cache: same bytes in, same arithmetic.
std::vector<float> all_logits(const std::string &model_dir, const TierCase &tier, uint64_t budget,
                              std::string &skip) {
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    p.storage = tier.tier.c_str();
    p.storage_direct_io = tier.direct_io;
    p.expert_cache_bytes = budget;
    std::unique_ptr<mst::ModelHandle> model;
    try {
        model = std::make_unique<mst::ModelHandle>(model_dir, p);
    } catch (const mst::Exception &e) {
        if (e.status() != MST_ERR_UNSUPPORTED || !(tier.direct_io || tier.tier == "direct")) throw;
        skip = std::string("the file system under ") + model_dir + " refuses O_DIRECT: " + e.what();
        return {};
    }
    mst_session_params sp = mst::session_params();
    sp.all_logits = 1;
    mst::SessionHandle session(*model, sp);
    const mst::test::Golden golden = mst::test::load_golden(model_dir + "/golden.safetensors");
    session.eval(golden.input_ids);
    const float *rows = nullptr;
    size_t n_rows = 0, n_vocab = 0;
    mst::check(mst_session_all_logits(session.get(), &rows, &n_rows, &n_vocab));
    std::vector<float> out(rows, rows + n_rows * n_vocab);
    for (int step = 0; step < 4; ++step) {  // decode steps read experts one token at a time
        session.eval({session.sample()});
        const std::vector<float> last = session.logits();
        out.insert(out.end(), last.begin(), last.end());
    }
    return out;
}

class TierLogits : public ::testing::TestWithParam<std::string> {};

TEST_P(TierLogits, BitwiseIdenticalForEveryTierAndBudget) {
    const std::string dir = mst::test::data_path(GetParam());
    std::string skip;
    const std::vector<float> expected = all_logits(dir, {"pread", false, "pread"}, 1ull << 30, skip);
    ASSERT_FALSE(expected.empty());
    std::vector<std::string> skipped;
    for (const TierCase &tier : tier_cases()) {
        for (uint64_t budget : {uint64_t(0), uint64_t(1) << 30}) {
            skip.clear();
            const std::vector<float> got = all_logits(dir, tier, budget, skip);
            if (!skip.empty()) {
                skipped.push_back(tier.label + ": " + skip);
                continue;
            }
            ASSERT_EQ(got.size(), expected.size()) << tier.label;
            EXPECT_EQ(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)), 0)
                << tier.label << " with a cache budget of " << budget << " bytes";
        }
    }
    if (!skipped.empty()) {
        std::string list;
        for (const std::string &s : skipped) list += "\n  " + s;
        GTEST_SKIP() << "every other tier matched; not compared:" << list;
    }
}

INSTANTIATE_TEST_SUITE_P(ReferenceCheckpoints, TierLogits,
                         ::testing::Values("qwen3_moe_tiny", "qwen3_moe_sharded_legacy"));

}  // namespace
