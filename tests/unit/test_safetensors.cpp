// Safetensors headers: round trips of every dtype and shape kind, and a clear
// mst::Error (status and message naming the file and tensor) for each kind of damage.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "expect_error.h"
#include "format/safetensors.h"
#include "mutation_fuzz.h"
#include "safetensors_writer.h"
#include "test_paths.h"

namespace {

using mst::DType;
using mst::File;
using mst::SafetensorsHeader;
using mst::TensorInfo;
using mst::test::expect_error;
using mst::test::SafetensorsWriter;

const std::string kMemPath = "mem.safetensors";

// Parses a header text as if it were followed by data_size bytes of tensor data.
SafetensorsHeader parse(const std::string &header, uint64_t data_size) {
    return mst::parse_safetensors_header(header, 8 + header.size(), 8 + header.size() + data_size, kMemPath);
}

const TensorInfo &find(const SafetensorsHeader &h, const std::string &name) {
    for (const TensorInfo &t : h.tensors)
        if (t.name == name) return t;
    throw std::runtime_error("tensor " + name + " not in header");
}

class SafetensorsTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = mst::test::make_temp_dir("mst_safetensors_");
        ASSERT_FALSE(dir_.empty());
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::string write(const std::string &name, const std::string &bytes) {
        const std::string path = dir_ + "/" + name;
        mst::test::write_file_bytes(path, bytes);
        return path;
    }
    static SafetensorsHeader read(const std::string &path) { return mst::read_safetensors_header(File::open_read(path)); }

    std::string dir_;
};

SafetensorsWriter sample_writer() {
    SafetensorsWriter w;
    w.add_f32("a.f32", {2, 3}, {1, 2, 3, 4, 5, 6});
    w.add_f16("b.f16", {4}, {0.5f, -1.0f, 2.0f, 65504.0f});
    w.add_bf16("c.bf16", {2, 2}, {1.0f, -2.0f, 3.0f, 0.25f});
    w.add<int64_t>("d.i64", DType::I64, {3}, {-1, 0, 1LL << 40});
    w.add<uint8_t>("e.u8", DType::U8, {5}, {1, 2, 3, 4, 255});
    w.add<uint8_t>("f.bool", DType::BOOL, {2}, {0, 1});
    w.add_f32("g.scalar", {}, {42.0f});
    w.add_f32("h.empty", {0, 3}, {});
    w.add<int8_t>("i.empty_i8", DType::I8, {0}, {});
    w.add<int32_t>("j.i32", DType::I32, {1, 1, 2}, {7, -7});
    w.add<double>("k.f64", DType::F64, {1}, {3.5});
    w.add<int16_t>("l.i16", DType::I16, {2}, {-300, 300});
    w.set_metadata("format", "pt");
    w.set_metadata("note", "made by a test");
    return w;
}

TEST_F(SafetensorsTest, RoundTripsDtypesShapesAndMetadata) {
    const SafetensorsWriter w = sample_writer();
    const std::string path = write("ok.safetensors", w.bytes());
    const File file = File::open_read(path);
    const SafetensorsHeader h = mst::read_safetensors_header(file);

    ASSERT_EQ(h.tensors.size(), 12u);
    for (size_t i = 1; i < h.tensors.size(); ++i) EXPECT_LT(h.tensors[i - 1].name, h.tensors[i].name);
    EXPECT_EQ(h.metadata.size(), 2u);
    EXPECT_EQ(h.metadata.at("format"), "pt");
    EXPECT_EQ(h.metadata.at("note"), "made by a test");

    struct Expect { const char *name; DType dtype; std::vector<int64_t> shape; int64_t numel; };
    const Expect expected[] = {
        {"a.f32", DType::F32, {2, 3}, 6},     {"b.f16", DType::F16, {4}, 4},      {"c.bf16", DType::BF16, {2, 2}, 4},
        {"d.i64", DType::I64, {3}, 3},        {"e.u8", DType::U8, {5}, 5},        {"f.bool", DType::BOOL, {2}, 2},
        {"g.scalar", DType::F32, {}, 1},      {"h.empty", DType::F32, {0, 3}, 0}, {"i.empty_i8", DType::I8, {0}, 0},
        {"j.i32", DType::I32, {1, 1, 2}, 2},  {"k.f64", DType::F64, {1}, 1},      {"l.i16", DType::I16, {2}, 2},
    };
    const std::string data = w.data_section();
    const uint64_t data_start = 8 + w.header_json().size();
    EXPECT_EQ(data_start % 8, 0u);
    for (const Expect &e : expected) {
        SCOPED_TRACE(e.name);
        const TensorInfo &t = find(h, e.name);
        EXPECT_EQ(t.dtype, e.dtype);
        EXPECT_EQ(t.shape, e.shape);
        EXPECT_EQ(t.numel(), e.numel);
        EXPECT_EQ(t.nbytes, uint64_t(e.numel) * mst::dtype_size(e.dtype));
        EXPECT_EQ(t.file_index, 0u);
        ASSERT_GE(t.offset, data_start);
        ASSERT_LE(t.offset + t.nbytes, file.size());
        // The bytes at the reported offset are the bytes the writer stored.
        std::string bytes(size_t(t.nbytes), '\0');
        file.pread_exact(bytes.data(), bytes.size(), t.offset);
        EXPECT_EQ(bytes, data.substr(size_t(t.offset - data_start), size_t(t.nbytes)));
    }
    float scalar = 0;
    file.pread_exact(&scalar, 4, find(h, "g.scalar").offset);
    EXPECT_EQ(scalar, 42.0f);
}

TEST_F(SafetensorsTest, HeaderWithOnlyMetadataOrNothing) {
    EXPECT_TRUE(parse("{}", 0).tensors.empty());
    const SafetensorsHeader h = parse(R"({"__metadata__": {"k": "v"}})", 0);
    EXPECT_TRUE(h.tensors.empty());
    EXPECT_EQ(h.metadata.at("k"), "v");
}

TEST_F(SafetensorsTest, TruncatedFilesAtEveryKindOfCutPoint) {
    const std::string bytes = sample_writer().bytes();
    const size_t header_end = 8 + sample_writer().header_json().size();
    // Cuts inside the length prefix, inside the header, and inside the data section.
    const size_t cuts[] = {0, 1, 7, 8, 9, header_end / 2, header_end - 1, header_end, header_end + 5,
                           bytes.size() - 1};
    for (const size_t cut : cuts) {
        SCOPED_TRACE(cut);
        const std::string path = write("cut.safetensors", bytes.substr(0, cut));
        if (cut < header_end) {
            expect_error([&] { read(path); }, MST_ERR_BAD_FORMAT, {path, "truncated"});
        } else {
            // The header is whole; the last tensor's bytes are not.
            expect_error([&] { read(path); }, MST_ERR_BAD_FORMAT, {path, "lies beyond the end of the file"});
        }
    }
}

TEST_F(SafetensorsTest, HeaderLengthBeyondTheFile) {
    const uint64_t claimed = 1000;
    const std::string path = write("long.safetensors", mst::test::safetensors_raw_bytes("{}", "", &claimed));
    expect_error([&] { read(path); }, MST_ERR_BAD_FORMAT, {path, "truncated", "1000"});
    const uint64_t huge = ~uint64_t(0);
    const std::string path2 = write("huge.safetensors", mst::test::safetensors_raw_bytes("{}", "", &huge));
    expect_error([&] { read(path2); }, MST_ERR_BAD_FORMAT, {path2, "truncated"});
}

TEST_F(SafetensorsTest, HeaderLargerThanTheLimitIsRefusedBeforeReading) {
    // A sparse file big enough to hold the claimed header: the limit, not the file
    // size, must refuse it.
    const uint64_t claimed = mst::kMaxSafetensorsHeaderBytes + 1;
    const std::string path = write("big.safetensors", mst::test::safetensors_length_prefix(claimed));
    ASSERT_EQ(::truncate(path.c_str(), off_t(8 + claimed)), 0);
    expect_error([&] { read(path); }, MST_ERR_BAD_FORMAT, {path, "exceeds"});
}

TEST_F(SafetensorsTest, HeaderThatIsNotJson) {
    const std::string path = write("bad.safetensors", mst::test::safetensors_raw_bytes("{\"a\": [1, 2", ""));
    expect_error([&] { read(path); }, MST_ERR_BAD_FORMAT, {path, "header is not valid JSON: "});
    expect_error([] { parse("[1, 2]", 0); }, MST_ERR_BAD_FORMAT, {kMemPath, "not a JSON object"});
    expect_error([] { parse("", 0); }, MST_ERR_BAD_FORMAT, {"header is not valid JSON"});
    expect_error([] { parse(std::string("{\"a\xff\": 1}"), 0); }, MST_ERR_BAD_FORMAT, {"header is not valid JSON"});
}

TEST_F(SafetensorsTest, DataBeyondTheFile) {
    expect_error([] { parse(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 8); },
                 MST_ERR_BAD_FORMAT, {kMemPath, "tensor 'w' data [0, 16) lies beyond the end of the file ("});
    expect_error([] { parse(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [18446744073709551612, 18446744073709551615]}})", 8); },
                 MST_ERR_BAD_FORMAT, {kMemPath, "tensor 'w'", "lies beyond"});
    expect_error([] { parse(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 8); },
                 MST_ERR_BAD_FORMAT, {kMemPath, "tensor 'w'", "begin is past its end"});
    // Through a file: data_start counts, so an offset valid for the header alone fails.
    const std::string header = R"({"w": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}})";
    const std::string path = write("short.safetensors", mst::test::safetensors_raw_bytes(header, "abc"));
    expect_error([&] { read(path); }, MST_ERR_BAD_FORMAT, {path, "tensor 'w' data [0, 4) lies beyond"});
}

TEST_F(SafetensorsTest, ByteCountMustMatchShapeAndDtype) {
    expect_error([] { parse(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", 64); },
                 MST_ERR_BAD_FORMAT, {kMemPath, "tensor 'w'", "holds 12 bytes", "[2, 2]", "need 16"});
    expect_error([] { parse(R"({"w": {"dtype": "BF16", "shape": [], "data_offsets": [0, 0]}})", 64); },
                 MST_ERR_BAD_FORMAT, {"tensor 'w'", "need 2"});
}

TEST_F(SafetensorsTest, ShapeErrors) {
    expect_error([] { parse(R"({"w": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 0]}})", 64); },
                 MST_ERR_BAD_FORMAT, {"tensor 'w'", "negative dimension"});
    expect_error([] { parse(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})", 64); },
                 MST_ERR_BAD_FORMAT, {"tensor 'w'", "overflows"});
    expect_error([] { parse(R"({"w": {"dtype": "F32", "shape": [18446744073709551615], "data_offsets": [0, 0]}})", 64); },
                 MST_ERR_BAD_FORMAT, {"tensor 'w'", "overflows"});
    // Element count fits in int64 but its byte count does not fit in uint64.
    expect_error([] { parse(R"({"w": {"dtype": "F64", "shape": [4611686018427387904], "data_offsets": [0, 0]}})", 64); },
                 MST_ERR_BAD_FORMAT, {"tensor 'w'", "more than 2^64"});
    expect_error([] { parse(R"({"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 0]}})", 64); },
                 MST_ERR_BAD_FORMAT, {"tensor 'w'", "not an integer"});
    expect_error([] { parse(R"({"w": {"dtype": "F32", "shape": 4, "data_offsets": [0, 16]}})", 64); },
                 MST_ERR_BAD_FORMAT, {"tensor 'w'", "'shape' that is not an array"});
}

TEST_F(SafetensorsTest, UnsupportedDtypes) {
    for (const char *dtype : {"F8_E5M2", "C64", "U64"}) {
        SCOPED_TRACE(dtype);
        const std::string header = std::string(R"({"x.weight": {"dtype": ")") + dtype +
                                   R"(", "shape": [1], "data_offsets": [0, 1]}})";
        expect_error([&] { parse(header, 8); }, MST_ERR_UNSUPPORTED,
                     {kMemPath, std::string("tensor 'x.weight' has dtype '") + dtype +
                                    "', which moestream does not support"});
    }
}

TEST_F(SafetensorsTest, MissingAndIllTypedFields) {
    struct Case { const char *header; const char *message; };
    const Case cases[] = {
        {R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", "tensor 'w' lacks 'dtype'"},
        {R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", "tensor 'w' lacks 'shape'"},
        {R"({"w": {"dtype": "F32", "shape": [1]}})", "tensor 'w' lacks 'data_offsets'"},
        {R"({"w": {"dtype": 3, "shape": [1], "data_offsets": [0, 4]}})", "tensor 'w' has a 'dtype' that is not a string"},
        {R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", "tensor 'w' has 'data_offsets'"},
        {R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": "0-4"}})", "tensor 'w' has 'data_offsets'"},
        {R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 4]}})", "tensor 'w' has a negative data offset"},
        {R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, "4"]}})", "tensor 'w' has a data offset that is not an integer"},
        {R"({"w": [1, 2, 3]})", "tensor 'w' entry is not a JSON object"},
        {R"({"__metadata__": {"k": 1}})", "'__metadata__' value 'k' is not a string"},
        {R"({"__metadata__": [1]})", "'__metadata__' is not a JSON object"},
    };
    for (const Case &c : cases) {
        SCOPED_TRACE(c.header);
        expect_error([&] { parse(c.header, 64); }, MST_ERR_BAD_FORMAT, {kMemPath, c.message});
    }
}

TEST_F(SafetensorsTest, MissingFileIsAnIoError) {
    const std::string path = dir_ + "/absent.safetensors";
    expect_error([&] { read(path); }, MST_ERR_IO, {path});
}

// Deterministic mutations of valid inputs: any outcome but an mst::Error or success
// (another exception type, a crash, a runaway allocation) fails the test.
std::string mutate(const std::string &input, std::mt19937_64 &rng) {
    static const char *const kTokens[] = {"\"",  "{",  "}",    "[",   "]",   ",",   ":",      "-",
                                          "0",   "9",  "e999", "-1",  "null", "[]",  "{}",     "\"F8_E5M2\"",
                                          "1.5", "\\", "18446744073709551615",  "\"shape\"", "\"dtype\"",
                                          "\"data_offsets\"", "\"__metadata__\"", "\xff"};
    std::string s = input;
    const int n_mutations = 1 + int(rng() % 4);
    for (int m = 0; m < n_mutations; ++m) {
        const size_t pos = s.empty() ? 0 : size_t(rng() % (s.size() + 1));
        switch (rng() % 6) {
            case 0:  // flip one byte to anything
                if (!s.empty()) s[pos % s.size()] = char(rng() & 0xff);
                break;
            case 1:  // flip one bit
                if (!s.empty()) s[pos % s.size()] = char(s[pos % s.size()] ^ (1 << (rng() % 8)));
                break;
            case 2:  // truncate
                s.resize(pos);
                break;
            case 3:  // insert a JSON-significant token
                s.insert(pos, kTokens[rng() % (sizeof kTokens / sizeof *kTokens)]);
                break;
            case 4: {  // delete a range
                const size_t len = size_t(rng() % 16);
                if (pos < s.size()) s.erase(pos, len);
                break;
            }
            default: {  // duplicate a range
                const size_t len = size_t(rng() % 32);
                if (pos < s.size()) s.insert(pos, s.substr(pos, len));
                break;
            }
        }
    }
    return s;
}

void check_invariants(const SafetensorsHeader &h, uint64_t file_size) {
    for (const TensorInfo &t : h.tensors) {
        ASSERT_LE(t.offset, file_size);
        ASSERT_LE(t.nbytes, file_size - t.offset);
        ASSERT_EQ(t.nbytes, uint64_t(t.numel()) * mst::dtype_size(t.dtype));
    }
}

TEST_F(SafetensorsTest, MutatedHeadersOnlyEverThrowMstError) {
    const SafetensorsWriter w = sample_writer();
    const std::string header = w.header_json();
    const uint64_t data_size = w.data_section().size();
    std::mt19937_64 rng(20240601);
    mst::test::expect_accepted_or_mst_error(4000, [&](int) {
        const std::string mutated = mutate(header, rng);
        const SafetensorsHeader h = parse(mutated, data_size);
        check_invariants(h, 8 + mutated.size() + data_size);
    });
}

// Mutations that keep the JSON valid and replace one value of one entry, so that
// the checks behind the JSON parser (types, shapes, offsets, sizes) are what is hit.
TEST_F(SafetensorsTest, MutatedHeaderValuesOnlyEverThrowMstError) {
    const SafetensorsWriter w = sample_writer();
    const nlohmann::json original = nlohmann::json::parse(w.header_json());
    const uint64_t data_size = w.data_section().size();
    const nlohmann::json kValues[] = {
        -1, 0, 1, 3, 1.5, "F16", "BF16", "I64", "F8_E4M3", "", nullptr, true, nlohmann::json::array(),
        nlohmann::json::object(), {0, 0}, {0, 4}, {8, 4}, {0, 18446744073709551615ull}, {1, 2, 3},
        {4294967296, 4294967296}, {-1}, {2, 2}, {0}, 9223372036854775807, 18446744073709551615ull, {"a"},
    };
    const char *const kFields[] = {"dtype", "shape", "data_offsets", "extra"};
    std::mt19937_64 rng(99);
    mst::test::expect_accepted_or_mst_error(4000, [&](int) {
        nlohmann::json header = original;
        const int n = 1 + int(rng() % 2);
        for (int m = 0; m < n; ++m) {
            auto it = header.begin();
            std::advance(it, long(rng() % header.size()));
            const nlohmann::json &value = kValues[rng() % (sizeof kValues / sizeof *kValues)];
            if (it->is_object() && rng() % 8 != 0) {
                (*it)[kFields[rng() % 4]] = value;
            } else {
                *it = value;  // the whole entry (or metadata) becomes something else
            }
        }
        const std::string text = header.dump();
        const SafetensorsHeader h = parse(text, data_size);
        check_invariants(h, 8 + text.size() + data_size);
    });
}

TEST_F(SafetensorsTest, MutatedFilesOnlyEverThrowMstError) {
    const std::string bytes = sample_writer().bytes();
    const std::string path = dir_ + "/fuzz.safetensors";
    std::mt19937_64 rng(7);
    mst::test::expect_accepted_or_mst_error(1500, [&](int) {
        const std::string mutated = mutate(bytes, rng);
        mst::test::write_file_bytes(path, mutated);
        const SafetensorsHeader h = read(path);
        check_invariants(h, mutated.size());
    });
}

}  // namespace
