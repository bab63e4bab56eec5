// The packed format's encoders and parsers: round trips, and for each field a damaged
// value that must end in the right mst::Error naming it (never a crash or a read out of
// bounds: every prefix of a valid index is tried).
#include <gtest/gtest.h>

#include <xxhash.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "expect_error.h"
#include "format/packed_format.h"

namespace mst {
namespace {

using test::expect_error;

std::span<const uint8_t> bytes_of(const std::string &s) {
    return {reinterpret_cast<const uint8_t *>(s.data()), s.size()};
}

void put_u64(std::string &s, size_t at, uint64_t v) {
    for (int i = 0; i < 8; ++i) s[at + size_t(i)] = char((v >> (8 * i)) & 0xff);
}

// Recomputes the header checksum after a field was changed on purpose.
void reseal(std::string &header) {
    put_u64(header, packed::kHeaderBytes - 8, XXH64(header.data(), packed::kHeaderBytes - 8, 0));
}

PackedHeader valid_header() {
    PackedHeader h;
    h.metadata = {4096, 100, 1};
    h.resident = {8192, 5000, 2};
    h.experts = {16384, 8192, 0};
    h.index = {24576, 300, 3};
    h.file_size = 28672;
    return h;
}

TEST(PackedHeader, RoundTrip) {
    const PackedHeader h = valid_header();
    const std::string bytes = encode_packed_header(h);
    ASSERT_EQ(bytes.size(), packed::kHeaderBytes);
    EXPECT_TRUE(has_packed_magic(bytes_of(bytes)));
    const PackedHeader back = parse_packed_header(bytes_of(bytes), h.file_size, true, "f.mst");
    EXPECT_EQ(back.version, packed::kFormatVersion);
    EXPECT_EQ(back.file_size, h.file_size);
    EXPECT_EQ(back.metadata.offset, 4096u);
    EXPECT_EQ(back.metadata.xxh64, 1u);
    EXPECT_EQ(back.resident.bytes, 5000u);
    EXPECT_EQ(back.experts.offset, 16384u);
    EXPECT_EQ(back.index.bytes, 300u);
}

TEST(PackedHeader, DamagedFieldsAreNamed) {
    const PackedHeader h = valid_header();
    const std::string good = encode_packed_header(h);
    const auto parse = [&](const std::string &bytes, uint64_t size) {
        return [bytes, size] { parse_packed_header(bytes_of(bytes), size, true, "f.mst"); };
    };
    std::string bad = good;
    bad[1] = 'X';
    expect_error(parse(bad, h.file_size), MST_ERR_BAD_FORMAT, {"f.mst", "magic"});
    bad = good;
    bad[8] = 2;  // version 2
    expect_error(parse(bad, h.file_size), MST_ERR_UNSUPPORTED, {"f.mst", "version 2", "version 1"});
    bad = good;
    bad[40] ^= 1;  // inside the metadata section's fields
    expect_error(parse(bad, h.file_size), MST_ERR_CHECKSUM, {"f.mst", "header checksum"});
    expect_error(parse(good, h.file_size - 4096), MST_ERR_BAD_FORMAT,
                 {"truncated", std::to_string(h.file_size), std::to_string(h.file_size - 4096)});
    expect_error(parse(good, h.file_size + 1), MST_ERR_BAD_FORMAT, {std::to_string(h.file_size + 1)});
    expect_error(parse(good.substr(0, 50), h.file_size), MST_ERR_BAD_FORMAT, {"truncated"});

    PackedHeader m = h;
    m.resident.offset = 8000;  // not 4 KiB aligned
    expect_error(parse(encode_packed_header(m), m.file_size), MST_ERR_BAD_FORMAT, {"resident", "8000"});
    m = h;
    m.experts.offset = 8192;  // inside the resident section
    expect_error(parse(encode_packed_header(m), m.file_size), MST_ERR_BAD_FORMAT, {"expert", "inside"});
    m = h;
    m.index.bytes = 1u << 20;  // past the end
    expect_error(parse(encode_packed_header(m), m.file_size), MST_ERR_BAD_FORMAT, {"index", "beyond the end"});
    m = h;
    m.flags = 4;
    expect_error(parse(encode_packed_header(m), m.file_size), MST_ERR_BAD_FORMAT, {"flags"});
    m = h;
    m.file_size = 28000;
    expect_error(parse(encode_packed_header(m), m.file_size), MST_ERR_BAD_FORMAT, {"multiple of 4096"});
    bad = good;
    bad[12] = 64;  // header size field
    reseal(bad);
    expect_error(parse(bad, h.file_size), MST_ERR_BAD_FORMAT, {"header size"});
    // Checksums off (the fuzzer's mode) still checks every field.
    bad = good;
    bad[40] ^= 1;
    EXPECT_NO_THROW(parse_packed_header(bytes_of(bad), h.file_size, false, "f.mst"));
}

TEST(PackedMetadata, RoundTripAndDamage) {
    const std::map<std::string, std::string> md = {{"config.json", "{\"a\": 1}"}, {"empty", ""}, {"bin", std::string("\0\1\2", 3)}};
    const std::string bytes = encode_packed_metadata(md);
    EXPECT_EQ(parse_packed_metadata(bytes_of(bytes), "f.mst"), md);
    for (size_t n = 0; n < bytes.size(); ++n)
        expect_error([&] { parse_packed_metadata(bytes_of(bytes.substr(0, n)), "f.mst"); }, MST_ERR_BAD_FORMAT,
                     {"f.mst: metadata", "truncated"});
    expect_error([&] { parse_packed_metadata(bytes_of(bytes + "x"), "f.mst"); }, MST_ERR_BAD_FORMAT, {"follow"});
    std::string dup = encode_packed_metadata({{"k", "1"}});
    dup[0] = 2;
    dup += dup.substr(4);
    expect_error([&] { parse_packed_metadata(bytes_of(dup), "f.mst"); }, MST_ERR_BAD_FORMAT, {"repeats"});
    std::string empty_key = encode_packed_metadata({{"k", "1"}});
    empty_key[4] = 0;
    expect_error([&] { parse_packed_metadata(bytes_of(empty_key), "f.mst"); }, MST_ERR_BAD_FORMAT, {"key of 0 bytes"});
}

// An index over valid_header(): two resident tensors (one Q8) and one layer of two experts.
struct IndexFixture {
    std::vector<TensorInfo> tensors;
    std::vector<std::vector<ExpertLayout>> experts;

    IndexFixture() {
        TensorInfo a;
        a.name = "model.norm.weight";
        a.dtype = DType::BF16;
        a.shape = {64};
        a.offset = 8192;
        a.nbytes = 128;
        TensorInfo b;
        b.name = "lm_head.weight";
        b.dtype = DType::Q8;
        b.shape = {10, 40};  // 2 blocks per row
        b.offset = 8192 + 128;
        b.nbytes = 10 * 68;
        tensors = {a, b};
        experts.resize(2);  // layer 0 dense, layer 1 with experts
        for (int e = 0; e < 2; ++e) {
            ExpertLayout x;
            x.parts = {ExpertMatrix{0, 0, DType::Q4, 4, 64, true}, ExpertMatrix{0, 192, DType::BF16, 2, 3, true}};
            ExpertBlob blob;
            blob.offset = 16384 + uint64_t(e) * 4096;
            blob.raw_bytes = 192 + 12;
            blob.stored_bytes = e == 0 ? blob.raw_bytes : 100;
            blob.codec = e == 0 ? BlobCodec::None : BlobCodec::Zstd;
            blob.xxh64 = 77 + uint64_t(e);
            x.blob = blob;
            experts[1].push_back(x);
        }
    }
    PackedContents parse(const std::string &bytes) const {
        PackedContents c;
        c.header = valid_header();
        parse_packed_index(bytes_of(bytes), "f.mst", c);
        return c;
    }
    std::string encode() const { return encode_packed_index(tensors, experts); }
};

TEST(PackedIndex, RoundTrip) {
    const IndexFixture f;
    const PackedContents c = f.parse(f.encode());
    ASSERT_EQ(c.tensors.size(), 2u);
    EXPECT_EQ(c.tensors[0].name, "lm_head.weight");  // sorted by name
    EXPECT_EQ(c.tensors[0].dtype, DType::Q8);
    EXPECT_EQ(c.tensors[0].shape, (std::vector<int64_t>{10, 40}));
    EXPECT_EQ(c.tensors[1].offset, 8192u);
    ASSERT_EQ(c.experts.size(), 2u);
    EXPECT_TRUE(c.experts[0].empty());
    ASSERT_EQ(c.experts[1].size(), 2u);
    const ExpertLayout &e1 = c.experts[1][1];
    ASSERT_TRUE(e1.blob.has_value());
    EXPECT_EQ(e1.blob->codec, BlobCodec::Zstd);
    EXPECT_EQ(e1.blob->offset, 16384u + 4096u);
    EXPECT_EQ(e1.blob->stored_bytes, 100u);
    EXPECT_EQ(e1.blob->xxh64, 78u);
    ASSERT_EQ(e1.parts.size(), 2u);
    EXPECT_EQ(e1.parts[0].dtype, DType::Q4);
    EXPECT_EQ(e1.parts[1].offset, 192u);
    EXPECT_EQ(e1.nbytes(), 204u);
}

TEST(PackedIndex, EveryTruncationIsAnError) {
    const IndexFixture f;
    const std::string bytes = f.encode();
    for (size_t n = 0; n < bytes.size(); ++n)
        expect_error([&] { f.parse(bytes.substr(0, n)); }, MST_ERR_BAD_FORMAT, {"f.mst: index", "truncated"});
    expect_error([&] { f.parse(bytes + std::string(3, '\0')); }, MST_ERR_BAD_FORMAT, {"3 bytes follow"});
}

TEST(PackedIndex, InconsistentEntriesAreNamed) {
    const auto check = [](const IndexFixture &f, mst_status code, std::initializer_list<std::string_view> parts) {
        expect_error([&] { f.parse(f.encode()); }, code, parts);
    };
    IndexFixture f;
    f.tensors[0].offset = 4096;  // in the metadata section
    check(f, MST_ERR_BAD_FORMAT, {"model.norm.weight", "outside the resident section"});
    f = IndexFixture();
    f.tensors[1].nbytes = 400;  // Q8 [10, 40] needs 680
    check(f, MST_ERR_BAD_FORMAT, {"lm_head.weight", "680"});
    f = IndexFixture();
    f.tensors[0].offset = 8192 + 8;
    check(f, MST_ERR_BAD_FORMAT, {"model.norm.weight", "multiple of 64"});
    f = IndexFixture();
    f.tensors[1].name = f.tensors[0].name;
    f.tensors[1].dtype = DType::BF16;
    f.tensors[1].shape = {64};
    f.tensors[1].nbytes = 128;
    check(f, MST_ERR_BAD_FORMAT, {"appears twice"});
    f = IndexFixture();
    f.experts[1][0].blob->offset = 16384 + 512;
    check(f, MST_ERR_BAD_FORMAT, {"layer 1 expert 0", "multiple of 4096"});
    f = IndexFixture();
    f.experts[1][1].blob->offset = 24576;  // in the index section
    check(f, MST_ERR_BAD_FORMAT, {"layer 1 expert 1", "outside the expert section"});
    f = IndexFixture();
    f.experts[1][0].blob->stored_bytes = 100;  // uncompressed, so it must equal raw
    check(f, MST_ERR_BAD_FORMAT, {"layer 1 expert 0", "uncompressed"});
    f = IndexFixture();
    f.experts[1][0].parts[1].rows = 200;  // past the raw bytes
    check(f, MST_ERR_BAD_FORMAT, {"layer 1 expert 0 part 1", "outside its blob"});
    f = IndexFixture();
    f.experts[1][0].blob->raw_bytes = 4096;
    f.experts[1][0].blob->stored_bytes = 4096;
    check(f, MST_ERR_BAD_FORMAT, {"layer 1 expert 0", "parts end at byte 204"});
    f = IndexFixture();
    f.experts[1][0].parts[1].offset = 200;
    check(f, MST_ERR_BAD_FORMAT, {"layer 1 expert 0 part 1", "multiple of 64"});
    f = IndexFixture();
    f.experts[1][0].parts[0].rows = -1;
    check(f, MST_ERR_BAD_FORMAT, {"layer 1 expert 0 part 0", "rows -1"});

    // Fields the encoder cannot produce: an unknown dtype name and codec.
    f = IndexFixture();
    std::string bytes = f.encode();
    const size_t q8 = bytes.find("Q8");
    bytes[q8 + 1] = '7';
    expect_error([&] { f.parse(bytes); }, MST_ERR_UNSUPPORTED, {"lm_head.weight", "'Q7'"});
    bytes = f.encode();
    // The first expert's codec byte follows its four u64 fields; find it by its checksum 77.
    std::string checksum77(8, '\0');
    checksum77[0] = 77;
    const size_t codec_at = bytes.find(checksum77) + 8;
    bytes[codec_at] = 9;
    expect_error([&] { f.parse(bytes); }, MST_ERR_BAD_FORMAT, {"layer 1 expert 0", "codec 9"});
}

TEST(PackedIndex, RandomDamageNeverCrashes) {
    const IndexFixture f;
    const std::string good = f.encode();
    std::mt19937 rng(5);
    for (int i = 0; i < 3000; ++i) {
        std::string bytes = good;
        const int flips = 1 + int(rng() % 4);
        for (int k = 0; k < flips; ++k) bytes[rng() % bytes.size()] = char(rng());
        try {
            f.parse(bytes);
        } catch (const Error &e) {
            EXPECT_TRUE(e.code() == MST_ERR_BAD_FORMAT || e.code() == MST_ERR_UNSUPPORTED) << e.what();
        }
    }
}

}  // namespace
}  // namespace mst
