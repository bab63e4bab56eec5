// The GGUF reader (format/gguf_file.h) on files written by tests/support/gguf_builder
// and on hand-made corruptions of them: every bad input is a named mst::Error.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "core/file_io.h"
#include "expect_error.h"
#include "format/gguf_file.h"
#include "gguf_builder.h"

namespace {

using mst::GgufFile;
using mst::GgufValueType;
using mst::test::expect_error;
using mst::test::GgufBuilder;
using mst::test::put_str;
using mst::test::put_u32;
using mst::test::put_u64;
namespace ggml_type = mst::ggml_type;

GgufFile parse(const std::string &bytes) {
    return mst::parse_gguf(std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()),
                           "test.gguf");
}

std::string f32_bytes(std::initializer_list<float> values) {
    std::string s(values.size() * 4, '\0');
    std::memcpy(s.data(), std::data(values), s.size());
    return s;
}

// A file with every metadata value type, a nested array and three tensors.
GgufBuilder full_builder() {
    GgufBuilder b;
    b.add_string("general.architecture", "qwen3moe");
    b.add_u32("qwen3moe.block_count", 3);
    b.add_i32("signed", -5);
    b.add_u64("big", uint64_t(1) << 40);
    b.add_f32("qwen3moe.rope.freq_base", 1e6f);
    b.add_bool("flag", true);
    b.add_raw("u8", GgufValueType::UInt8, std::string(1, char(200)));
    b.add_raw("i8", GgufValueType::Int8, std::string(1, char(-3)));
    b.add_raw("u16", GgufValueType::UInt16, std::string("\x34\x12", 2));
    b.add_raw("i16", GgufValueType::Int16, std::string("\xfe\xff", 2));
    std::string f64(8, '\0');
    const double half = 0.5;
    std::memcpy(f64.data(), &half, 8);
    b.add_raw("f64", GgufValueType::Float64, f64);
    std::string i64;
    put_u64(i64, uint64_t(-7));
    b.add_raw("i64", GgufValueType::Int64, i64);
    b.add_string_array("tokens", {"a", "b", "Ġc"});
    b.add_i32_array("types", {1, 3, -1});
    b.add_f32_array("scores", {0.25f, -1.5f});
    // [[1, 2], [3]] as arrays of UINT16.
    std::string nested;
    put_u32(nested, uint32_t(GgufValueType::Array));
    put_u64(nested, 2);
    put_u32(nested, uint32_t(GgufValueType::UInt16));
    put_u64(nested, 2);
    nested += std::string("\x01\x00\x02\x00", 4);
    put_u32(nested, uint32_t(GgufValueType::UInt16));
    put_u64(nested, 1);
    nested += std::string("\x03\x00", 2);
    b.add_raw("nested", GgufValueType::Array, nested);
    b.set_alignment(64);
    b.add_tensor("a", ggml_type::F32, {4, 2}, f32_bytes({1, 2, 3, 4, 5, 6, 7, 8}));
    b.add_tensor("q", ggml_type::Q8_0, {32}, std::string(34, '\x01'));
    b.add_tensor("b", ggml_type::F32, {16}, std::string(64, '\x02'));  // ends on the alignment: no trailing padding
    return b;
}

TEST(GgufReader, ReadsEveryValueTypeAndTensorInfo) {
    const std::string bytes = full_builder().build();
    const GgufFile f = parse(bytes);
    EXPECT_EQ(f.version, 3u);
    EXPECT_EQ(f.alignment, 64u);
    EXPECT_EQ(f.data_offset % 64, 0u);
    EXPECT_EQ(f.require_string("general.architecture"), "qwen3moe");
    EXPECT_EQ(f.require_uint("qwen3moe.block_count"), 3u);
    EXPECT_EQ(f.require_uint("big"), uint64_t(1) << 40);
    EXPECT_EQ(f.require_uint("u8"), 200u);
    EXPECT_EQ(f.require_uint("u16"), 0x1234u);
    EXPECT_FLOAT_EQ(float(f.require_float("qwen3moe.rope.freq_base")), 1e6f);
    EXPECT_DOUBLE_EQ(f.require_float("f64"), 0.5);
    EXPECT_EQ(f.find_bool("flag"), true);
    EXPECT_EQ(f.require_string_array("tokens"), (std::vector<std::string>{"a", "b", "Ġc"}));
    EXPECT_EQ(f.find_int_array("types"), (std::vector<int64_t>{1, 3, -1}));
    const mst::GgufValue *scores = f.find("scores");
    ASSERT_NE(scores, nullptr);
    EXPECT_DOUBLE_EQ(scores->float_at(1), -1.5);
    const mst::GgufValue *nested = f.find("nested");
    ASSERT_NE(nested, nullptr);
    ASSERT_EQ(nested->arrays.size(), 2u);
    EXPECT_EQ(nested->arrays[0].int_at(1), 2);
    EXPECT_EQ(nested->arrays[1].int_at(0), 3);
    // Negative integers are errors for a count, with the key named.
    expect_error([&] { f.require_uint("signed"); }, MST_ERR_BAD_FORMAT, {"test.gguf", "'signed'", "-5"});
    expect_error([&] { f.require_uint("i8"); }, MST_ERR_BAD_FORMAT, {"'i8'"});
    expect_error([&] { f.require_uint("i64"); }, MST_ERR_BAD_FORMAT, {"'i64'"});

    ASSERT_EQ(f.tensors.size(), 3u);
    const mst::GgufTensor *a = f.find_tensor("a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->shape(), (std::vector<int64_t>{2, 4}));
    EXPECT_EQ(a->nbytes, 32u);
    EXPECT_EQ(a->offset, f.data_offset);
    float first;
    std::memcpy(&first, bytes.data() + a->offset, 4);
    EXPECT_EQ(first, 1.0f);
    const mst::GgufTensor *q = f.find_tensor("q");
    EXPECT_EQ(q->nbytes, 34u);
    EXPECT_EQ(q->offset, f.data_offset + 64);
    EXPECT_EQ(f.find_tensor("b")->offset + 64, bytes.size());
    EXPECT_EQ(mst::ggml_type_to_dtype(q->type), mst::DType::Q8);
}

TEST(GgufReader, ReadsVersion2AndTheDefaultAlignmentFromDisk) {
    GgufBuilder b;
    b.version = 2;
    b.add_string("general.architecture", "llama");
    b.add_tensor("t", ggml_type::F16, {3}, std::string(6, '\0'));
    const std::string path = (std::filesystem::temp_directory_path() / "mst_gguf_reader_v2.gguf").string();
    b.write(path);
    const GgufFile f = mst::read_gguf(mst::File::open_read(path));
    std::filesystem::remove(path);
    EXPECT_EQ(f.version, 2u);
    EXPECT_EQ(f.alignment, 32u);
    EXPECT_EQ(f.data_offset % 32, 0u);
    EXPECT_EQ(f.find_tensor("t")->nbytes, 6u);
}

TEST(GgufReader, EveryTruncationIsANamedError) {
    const std::string bytes = full_builder().build();
    for (size_t n = 0; n < bytes.size(); ++n)
        expect_error([&] { parse(bytes.substr(0, n)); }, MST_ERR_BAD_FORMAT, {"test.gguf"});
    expect_error([&] { parse(bytes.substr(0, 6)); }, MST_ERR_BAD_FORMAT, {"truncated", "version"});
}

// A header with the given counts followed by `rest`.
std::string header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    std::string s = "GGUF";
    put_u32(s, version);
    put_u64(s, n_tensors);
    put_u64(s, n_kv);
    return s;
}

std::string kv_u32(std::string_view key, uint32_t v) {
    std::string s;
    put_str(s, key);
    put_u32(s, uint32_t(GgufValueType::UInt32));
    put_u32(s, v);
    return s;
}

std::string tensor_info(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    std::string s;
    put_str(s, name);
    put_u32(s, uint32_t(ne.size()));
    for (uint64_t d : ne) put_u64(s, d);
    put_u32(s, type);
    put_u64(s, offset);
    return s;
}

// Pads s to a multiple of 32 and appends n data bytes.
std::string with_data(std::string s, size_t n) {
    s.append((32 - s.size() % 32) % 32, '\0');
    return s + std::string(n, '\x7f');
}

TEST(GgufReader, BadMagicAndVersionsAreRefused) {
    expect_error([&] { parse("GGML" + header(0, 0).substr(4)); }, MST_ERR_BAD_FORMAT, {"not a GGUF file"});
    expect_error([&] { parse(header(0, 0, 1)); }, MST_ERR_UNSUPPORTED, {"version 1"});
    expect_error([&] { parse(header(0, 0, 7)); }, MST_ERR_UNSUPPORTED, {"version 7"});
    expect_error([&] { parse(header(0, 0, 0x03000000)); }, MST_ERR_UNSUPPORTED, {"big-endian"});
}

TEST(GgufReader, AbsurdCountsAreBoundedByTheFileSize) {
    expect_error([&] { parse(header(0, uint64_t(1) << 60) + kv_u32("a", 1)); }, MST_ERR_BAD_FORMAT,
                 {"metadata count 1152921504606846976", "cannot fit"});
    expect_error([&] { parse(header(UINT64_MAX, 0) + std::string(100, '\0')); }, MST_ERR_BAD_FORMAT,
                 {"tensor count", "cannot fit"});
    // An array claiming more elements than the file holds, before anything is allocated.
    std::string array;
    put_str(array, "tokenizer.ggml.tokens");
    put_u32(array, uint32_t(GgufValueType::Array));
    put_u32(array, uint32_t(GgufValueType::String));
    put_u64(array, uint64_t(1) << 50);
    expect_error([&] { parse(header(0, 1) + array + std::string(64, '\0')); }, MST_ERR_BAD_FORMAT,
                 {"'tokenizer.ggml.tokens'", "1125899906842624 elements", "past the end"});
}

TEST(GgufReader, StringLengthPastTheEndIsNamed) {
    std::string kv;
    put_str(kv, "general.name");
    put_u32(kv, uint32_t(GgufValueType::String));
    put_u64(kv, 1000);
    expect_error([&] { parse(header(0, 1) + kv + "short"); }, MST_ERR_BAD_FORMAT,
                 {"'general.name'", "length 1000", "past the end"});
    std::string key;
    put_u64(key, uint64_t(1) << 62);
    expect_error([&] { parse(header(0, 1) + key + std::string(20, 'x')); }, MST_ERR_BAD_FORMAT,
                 {"metadata key", "length 4611686018427387904"});
}

TEST(GgufReader, UnknownTypesAreNamed) {
    std::string kv;
    put_str(kv, "general.odd");
    put_u32(kv, 13);
    put_u32(kv, 0);
    expect_error([&] { parse(header(0, 1) + kv); }, MST_ERR_BAD_FORMAT, {"'general.odd'", "unknown value type 13"});
    std::string arr;
    put_str(arr, "general.arr");
    put_u32(arr, uint32_t(GgufValueType::Array));
    put_u32(arr, 99);
    put_u64(arr, 0);
    expect_error([&] { parse(header(0, 1) + arr); }, MST_ERR_BAD_FORMAT, {"'general.arr'", "array element type 99"});
    expect_error([&] { parse(with_data(header(1, 0) + tensor_info("w", {32}, 4, 0), 64)); }, MST_ERR_UNSUPPORTED,
                 {"tensor 'w'", "unknown ggml type 4"});
    expect_error([&] { parse(with_data(header(1, 0) + tensor_info("w", {32}, 1000, 0), 64)); }, MST_ERR_UNSUPPORTED,
                 {"tensor 'w'", "ggml type 1000"});
}

TEST(GgufReader, DuplicatedKeysAndTensorsAreRefused) {
    expect_error([&] { parse(header(0, 2) + kv_u32("a.b", 1) + kv_u32("a.b", 2)); }, MST_ERR_BAD_FORMAT,
                 {"'a.b' appears twice"});
    const std::string two = header(2, 0) + tensor_info("w", {8}, ggml_type::F32, 0) +
                            tensor_info("w", {8}, ggml_type::F32, 32);
    expect_error([&] { parse(with_data(two, 64)); }, MST_ERR_BAD_FORMAT, {"tensor 'w' appears twice"});
}

TEST(GgufReader, TensorRangesAreCheckedAgainstTheFile) {
    expect_error([&] { parse(with_data(header(1, 0) + tensor_info("blk.0.w", {8}, ggml_type::F32, 32), 32)); },
                 MST_ERR_BAD_FORMAT, {"tensor 'blk.0.w'", "past the end of the file"});
    expect_error([&] { parse(with_data(header(1, 0) + tensor_info("w", {8}, ggml_type::F32, UINT64_MAX - 31), 32)); },
                 MST_ERR_BAD_FORMAT, {"tensor 'w'", "past the end"});
    expect_error([&] { parse(with_data(header(1, 0) + tensor_info("w", {4}, ggml_type::F32, 8), 64)); },
                 MST_ERR_BAD_FORMAT, {"tensor 'w'", "offset 8", "alignment 32"});
    expect_error([&] { parse(with_data(header(1, 0) + tensor_info("w", {uint64_t(1) << 40, uint64_t(1) << 40}, 0, 0), 8)); },
                 MST_ERR_BAD_FORMAT, {"tensor 'w'", "overflow"});
    expect_error([&] { parse(with_data(header(1, 0) + tensor_info("w", {1, 1, 1, 1, 1}, 0, 0), 8)); },
                 MST_ERR_BAD_FORMAT, {"tensor 'w'", "5 dimensions"});
    expect_error([&] { parse(with_data(header(1, 0) + tensor_info("w", {48}, ggml_type::Q8_0, 0), 64)); },
                 MST_ERR_BAD_FORMAT, {"tensor 'w'", "Q8_0", "48 elements", "block of 32"});
    const std::string overlap = header(2, 0) + tensor_info("x", {16}, ggml_type::F32, 0) +
                                tensor_info("y", {8}, ggml_type::F32, 32);
    expect_error([&] { parse(with_data(overlap, 64)); }, MST_ERR_BAD_FORMAT, {"'x' and 'y' overlap"});
}

TEST(GgufReader, AlignmentMustBeAUint32PowerOfTwo) {
    expect_error([&] { parse(header(0, 1) + kv_u32("general.alignment", 24)); }, MST_ERR_BAD_FORMAT,
                 {"general.alignment 24", "power of two"});
    expect_error([&] { parse(header(0, 1) + kv_u32("general.alignment", 0)); }, MST_ERR_BAD_FORMAT,
                 {"general.alignment 0"});
    std::string kv;
    put_str(kv, "general.alignment");
    put_u32(kv, uint32_t(GgufValueType::UInt64));
    put_u64(kv, 64);
    expect_error([&] { parse(header(0, 1) + kv); }, MST_ERR_BAD_FORMAT, {"'general.alignment' is UINT64", "UINT32"});
}

TEST(GgufReader, MetadataOfTheWrongTypeIsNamed) {
    const GgufFile f = parse(full_builder().build());
    expect_error([&] { f.require_uint("general.architecture"); }, MST_ERR_BAD_FORMAT,
                 {"'general.architecture' is STRING", "integer"});
    expect_error([&] { f.require_float("qwen3moe.block_count"); }, MST_ERR_BAD_FORMAT, {"is UINT32", "a float"});
    expect_error([&] { f.require_string("qwen3moe.block_count"); }, MST_ERR_BAD_FORMAT, {"STRING"});
    expect_error([&] { f.require_string_array("types"); }, MST_ERR_BAD_FORMAT, {"'types' is ARRAY of INT32"});
    expect_error([&] { f.find_int_array("tokens"); }, MST_ERR_BAD_FORMAT, {"'tokens' is ARRAY of STRING"});
    expect_error([&] { f.find_bool("u8"); }, MST_ERR_BAD_FORMAT, {"'u8' is UINT8", "BOOL"});
    expect_error([&] { f.require_uint("missing.key"); }, MST_ERR_BAD_FORMAT, {"lacks 'missing.key'"});
}

TEST(GgufReader, BadBoolsAndDeepNestingAreRefused) {
    std::string kv;
    put_str(kv, "flag");
    put_u32(kv, uint32_t(GgufValueType::Bool));
    kv.push_back('\x02');
    expect_error([&] { parse(header(0, 1) + kv); }, MST_ERR_BAD_FORMAT, {"'flag'", "BOOL of value 2"});
    std::string deep;
    put_str(deep, "deep");
    put_u32(deep, uint32_t(GgufValueType::Array));
    for (int i = 0; i < 20; ++i) {
        put_u32(deep, uint32_t(GgufValueType::Array));
        put_u64(deep, 1);
    }
    expect_error([&] { parse(header(0, 1) + deep + std::string(64, '\0')); }, MST_ERR_BAD_FORMAT,
                 {"'deep'", "nests arrays deeper"});
}

}  // namespace
