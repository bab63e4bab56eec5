// Checkpoint directories: the three layouts (single file, index + shards, bare shards),
// the errors for broken ones, and exact values read back through read / read_f32.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "expect_error.h"
#include "format/checkpoint.h"
#include "safetensors_writer.h"
#include "test_paths.h"

namespace {

using mst::Checkpoint;
using mst::DType;
using mst::TensorInfo;
using mst::test::expect_error;
using mst::test::SafetensorsWriter;

float bits_to_f32(uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

class CheckpointTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = mst::test::make_temp_dir("mst_checkpoint_");
        ASSERT_FALSE(dir_.empty());
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::string sub(const std::string &name) {
        const std::string path = dir_ + "/" + name;
        std::filesystem::create_directories(path);
        return path;
    }
    static void write_text(const std::string &path, const std::string &text) { mst::test::write_file_bytes(path, text); }

    std::string dir_;
};

// Exactly representable values stored as explicit bit patterns, so the expected
// float32 values do not depend on the conversion code under test.
const std::vector<uint16_t> kF16Bits = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x3555, 0x8000};
const std::vector<float> kF16Values = {1.0f, -2.0f, 65504.0f, 5.9604644775390625e-08f, 0.333251953125f, -0.0f};
const std::vector<uint16_t> kBF16Bits = {0x3F80, 0xC000, 0x4049, 0x0000, 0x7F80, 0x3EAB};
const std::vector<float> kBF16Values = {1.0f, -2.0f, 3.140625f, 0.0f, INFINITY, 0.333984375f};
const std::vector<float> kF32Values = {1.5f, -0.1f, 1e-30f, 3.4e38f, 0.0f, 7.0f};

SafetensorsWriter single_file_writer() {
    SafetensorsWriter w;
    w.add_f32("model.embed.weight", {2, 3}, kF32Values);
    w.add<uint16_t>("model.norm.weight", DType::F16, {6}, kF16Bits);
    w.add<uint16_t>("lm_head.weight", DType::BF16, {3, 2}, kBF16Bits);
    w.add<int32_t>("model.ids", DType::I32, {3}, {5, -6, 7});
    w.add_f32("model.scalar", {}, {2.5f});
    w.add_f32("model.empty", {0, 4}, {});
    return w;
}

TEST_F(CheckpointTest, SingleFileReadsExactValues) {
    const std::string dir = sub("single");
    single_file_writer().write(dir + "/model.safetensors");
    write_text(dir + "/config.json", "{}");  // other files in the directory are ignored
    const auto ckpt = Checkpoint::open(dir);

    EXPECT_EQ(ckpt->dir(), dir);
    ASSERT_EQ(ckpt->files().size(), 1u);
    EXPECT_EQ(ckpt->files()[0], dir + "/model.safetensors");
    EXPECT_EQ(ckpt->file(0).path(), ckpt->files()[0]);
    EXPECT_EQ(ckpt->names(), (std::vector<std::string>{"lm_head.weight", "model.embed.weight", "model.empty",
                                                       "model.ids", "model.norm.weight", "model.scalar"}));
    EXPECT_EQ(ckpt->tensors().size(), 6u);
    EXPECT_EQ(ckpt->total_bytes(), 24u + 12u + 12u + 12u + 4u + 0u);
    EXPECT_EQ(ckpt->find("absent"), nullptr);

    const TensorInfo &embed = ckpt->require("model.embed.weight", {2, 3});
    EXPECT_EQ(ckpt->read_f32(embed), kF32Values);
    const std::vector<float> f16 = ckpt->read_f32(ckpt->require("model.norm.weight", {6}));
    ASSERT_EQ(f16.size(), kF16Values.size());
    for (size_t i = 0; i < f16.size(); ++i) {
        EXPECT_EQ(f16[i], kF16Values[i]) << i;
        EXPECT_EQ(std::signbit(f16[i]), std::signbit(kF16Values[i])) << i;
    }
    EXPECT_EQ(ckpt->read_f32(ckpt->require("lm_head.weight", {3, 2})), kBF16Values);
    EXPECT_EQ(ckpt->read_f32(ckpt->require("model.scalar", {})), std::vector<float>{2.5f});
    EXPECT_TRUE(ckpt->read_f32(ckpt->require("model.empty", {0, 4})).empty());

    const TensorInfo &ids = ckpt->require("model.ids");
    int32_t raw[3] = {};
    ckpt->read(ids, raw);
    EXPECT_EQ(raw[0], 5);
    EXPECT_EQ(raw[1], -6);
    EXPECT_EQ(raw[2], 7);
    expect_error([&] { ckpt->read_f32(ids); }, MST_ERR_UNSUPPORTED, {"model.ids", "I32"});

    // Raw bytes of a BF16 tensor are the stored bits.
    uint16_t bits[6] = {};
    ckpt->read(ckpt->require("lm_head.weight"), bits);
    EXPECT_EQ(std::vector<uint16_t>(bits, bits + 6), kBF16Bits);
    EXPECT_EQ(bits_to_f32(uint32_t(bits[2]) << 16), 3.140625f);
}

TEST_F(CheckpointTest, RequireNamesTheTensorAndShapes) {
    const std::string dir = sub("req");
    single_file_writer().write(dir + "/model.safetensors");
    const auto ckpt = Checkpoint::open(dir);
    expect_error([&] { ckpt->require("model.nope"); }, MST_ERR_BAD_FORMAT,
                 {"tensor 'model.nope' not found in checkpoint '" + dir + "'"});
    expect_error([&] { ckpt->require("model.embed.weight", {3, 2}); }, MST_ERR_BAD_FORMAT,
                 {"tensor 'model.embed.weight' has shape [2, 3], expected [3, 2]"});
    expect_error([&] { ckpt->require("model.embed.weight", {2, 3, 1}); }, MST_ERR_BAD_FORMAT,
                 {"has shape [2, 3], expected [2, 3, 1]"});
    expect_error([&] { ckpt->require("model.scalar", {1}); }, MST_ERR_BAD_FORMAT, {"has shape [], expected [1]"});
    expect_error([&] { ckpt->file(1); }, MST_ERR_INVALID_ARGUMENT, {dir});
}

TEST_F(CheckpointTest, ReadRejectsATensorThatIsNotFromItsFile) {
    const std::string dir = sub("foreign");
    single_file_writer().write(dir + "/model.safetensors");
    const auto ckpt = Checkpoint::open(dir);
    TensorInfo forged = ckpt->require("model.embed.weight");
    forged.nbytes = 1u << 30;  // more than the file holds
    expect_error([&] { ckpt->read_f32(forged); }, MST_ERR_INVALID_ARGUMENT, {"model.embed.weight"});
    forged = ckpt->require("model.embed.weight");
    forged.shape = {100};  // shape disagrees with the byte count
    expect_error([&] { ckpt->read_f32(forged); }, MST_ERR_INVALID_ARGUMENT, {"model.embed.weight"});
}

// Two shards, each holding some layers, as transformers writes them.
void write_two_shards(const std::string &dir, const std::string &first, const std::string &second) {
    SafetensorsWriter a;
    a.add_f32("model.layers.0.w", {2}, {1.0f, 2.0f});
    a.add_bf16("model.embed_tokens.weight", {2, 2}, {0.5f, 1.5f, -1.0f, 8.0f});
    a.write(dir + "/" + first);
    SafetensorsWriter b;
    b.add_f32("model.layers.1.w", {3}, {3.0f, 4.0f, 5.0f});
    b.add_f16("lm_head.weight", {2}, {0.25f, -4.0f});
    b.write(dir + "/" + second);
}

const char *kIndex = R"({
  "metadata": {"total_size": 40},
  "weight_map": {
    "model.layers.0.w": "model-00001-of-00002.safetensors",
    "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
    "model.layers.1.w": "model-00002-of-00002.safetensors",
    "lm_head.weight": "model-00002-of-00002.safetensors"
  }
})";

TEST_F(CheckpointTest, ShardedWithIndex) {
    const std::string dir = sub("sharded");
    write_two_shards(dir, "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");
    write_text(dir + "/" + Checkpoint::kIndexName, kIndex);
    const auto ckpt = Checkpoint::open(dir);
    ASSERT_EQ(ckpt->files().size(), 2u);
    EXPECT_EQ(ckpt->files()[0], dir + "/model-00001-of-00002.safetensors");
    EXPECT_EQ(ckpt->files()[1], dir + "/model-00002-of-00002.safetensors");
    EXPECT_EQ(ckpt->require("model.layers.0.w").file_index, 0u);
    EXPECT_EQ(ckpt->require("lm_head.weight").file_index, 1u);
    EXPECT_EQ(ckpt->read_f32(ckpt->require("model.layers.1.w", {3})), (std::vector<float>{3.0f, 4.0f, 5.0f}));
    EXPECT_EQ(ckpt->read_f32(ckpt->require("lm_head.weight", {2})), (std::vector<float>{0.25f, -4.0f}));
    EXPECT_EQ(ckpt->read_f32(ckpt->require("model.embed_tokens.weight", {2, 2})),
              (std::vector<float>{0.5f, 1.5f, -1.0f, 8.0f}));
    EXPECT_EQ(ckpt->total_bytes(), 8u + 8u + 12u + 4u);
    // The experts layer reads by offset through the kept-open files.
    const TensorInfo &t = ckpt->require("model.layers.1.w");
    float second = 0;
    ckpt->file(t.file_index).pread_exact(&second, 4, t.offset + 4);
    EXPECT_EQ(second, 4.0f);
}

TEST_F(CheckpointTest, SingleFileWinsOverAnIndex) {
    const std::string dir = sub("both");
    single_file_writer().write(dir + "/model.safetensors");
    write_text(dir + "/" + Checkpoint::kIndexName, "{\"weight_map\": {\"x\": \"gone.safetensors\"}}");
    const auto ckpt = Checkpoint::open(dir);
    EXPECT_EQ(ckpt->files(), std::vector<std::string>{dir + "/model.safetensors"});
    EXPECT_NE(ckpt->find("model.ids"), nullptr);
}

TEST_F(CheckpointTest, ShardsWithoutIndexAreTakenInSortedOrder) {
    const std::string dir = sub("bare");
    write_two_shards(dir, "b.safetensors", "a.safetensors");
    write_text(dir + "/notes.txt", "not a shard");
    const auto ckpt = Checkpoint::open(dir);
    ASSERT_EQ(ckpt->files().size(), 2u);
    EXPECT_EQ(ckpt->files()[0], dir + "/a.safetensors");
    EXPECT_EQ(ckpt->files()[1], dir + "/b.safetensors");
    EXPECT_EQ(ckpt->require("lm_head.weight").file_index, 0u);  // written to a.safetensors
    EXPECT_EQ(ckpt->require("model.layers.0.w").file_index, 1u);
    EXPECT_EQ(ckpt->read_f32(ckpt->require("model.layers.0.w")), (std::vector<float>{1.0f, 2.0f}));
    EXPECT_EQ(ckpt->names().size(), 4u);
}

TEST_F(CheckpointTest, MissingOrEmptyDirectory) {
    const std::string missing = dir_ + "/does_not_exist";
    expect_error([&] { Checkpoint::open(missing); }, MST_ERR_IO,
                 {"checkpoint directory '" + missing + "' does not exist"});
    const std::string empty = sub("empty");
    write_text(empty + "/config.json", "{}");
    expect_error([&] { Checkpoint::open(empty); }, MST_ERR_BAD_FORMAT, {empty, "no .safetensors"});
    const std::string file_path = dir_ + "/plain_file";
    write_text(file_path, "x");
    expect_error([&] { Checkpoint::open(file_path); }, MST_ERR_BAD_FORMAT,
                 {file_path, "neither a checkpoint directory, a moestream packed file nor a GGUF file"});
    const std::string empty_file = dir_ + "/empty_file";
    write_text(empty_file, "");
    expect_error([&] { Checkpoint::open(empty_file); }, MST_ERR_BAD_FORMAT, {empty_file, "it is empty"});
}

TEST_F(CheckpointTest, FifoIsNamedAndNeverOpened) {
    // Opening a FIFO for reading would block until a writer came; it is refused by type.
    const std::string fifo = dir_ + "/model.fifo";
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    expect_error([&] { Checkpoint::open(fifo); }, MST_ERR_IO, {fifo, "a FIFO"});
    expect_error([&] { Checkpoint::open("/dev/null"); }, MST_ERR_IO, {"/dev/null", "a character device"});
}

TEST_F(CheckpointTest, IndexNamingAMissingShard) {
    const std::string dir = sub("missing_shard");
    write_two_shards(dir, "model-00001-of-00002.safetensors", "other.safetensors");
    write_text(dir + "/" + Checkpoint::kIndexName, kIndex);
    expect_error([&] { Checkpoint::open(dir); }, MST_ERR_IO, {"model-00002-of-00002.safetensors", "does not exist"});
}

TEST_F(CheckpointTest, IndexNamingATensorItsShardLacks) {
    const std::string dir = sub("lacking");
    write_two_shards(dir, "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");
    std::string index = kIndex;
    index.replace(index.find("\"lm_head.weight\""), 16, "\"model.extra\": \"model-00002-of-00002.safetensors\", \"lm_head.weight\"");
    write_text(dir + "/" + Checkpoint::kIndexName, index);
    expect_error([&] { Checkpoint::open(dir); }, MST_ERR_BAD_FORMAT, {"model.extra", "does not contain it"});

    // A tensor mapped to the wrong shard is the same error.
    std::string swapped = kIndex;
    const std::string from = R"("lm_head.weight": "model-00002-of-00002.safetensors")";
    swapped.replace(swapped.find(from), from.size(), R"("lm_head.weight": "model-00001-of-00002.safetensors")");
    write_text(dir + "/" + Checkpoint::kIndexName, swapped);
    expect_error([&] { Checkpoint::open(dir); }, MST_ERR_BAD_FORMAT, {"lm_head.weight", "does not contain it"});
}

TEST_F(CheckpointTest, DuplicateTensorAcrossShards) {
    const std::string dir = sub("dup");
    SafetensorsWriter a;
    a.add_f32("shared.w", {1}, {1.0f});
    a.write(dir + "/a.safetensors");
    SafetensorsWriter b;
    b.add_f32("shared.w", {1}, {2.0f});
    b.write(dir + "/b.safetensors");
    expect_error([&] { Checkpoint::open(dir); }, MST_ERR_BAD_FORMAT,
                 {"shared.w", dir + "/a.safetensors", dir + "/b.safetensors"});
}

TEST_F(CheckpointTest, MalformedIndexFiles) {
    const std::string dir = sub("bad_index");
    write_two_shards(dir, "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");
    const std::string index_path = dir + "/" + Checkpoint::kIndexName;
    struct Case { const char *text; const char *message; };
    const Case cases[] = {
        {"{\"weight_map\": ", "not valid JSON"},
        {"[]", "not a JSON object"},
        {"{\"metadata\": {}}", "lacks 'weight_map'"},
        {"{\"weight_map\": []}", "'weight_map' is not a JSON object"},
        {"{\"weight_map\": {}}", "'weight_map' is empty"},
        {"{\"weight_map\": {\"a\": 1}}", "tensor 'a' is not a string"},
        {"{\"weight_map\": {\"a\": \"../model-00001-of-00002.safetensors\"}}", "not a file name"},
        {"{\"weight_map\": {\"a\": \"/etc/passwd\"}}", "not a file name"},
    };
    for (const Case &c : cases) {
        SCOPED_TRACE(c.text);
        write_text(index_path, c.text);
        expect_error([&] { Checkpoint::open(dir); }, MST_ERR_BAD_FORMAT, {index_path, c.message});
    }
}

TEST_F(CheckpointTest, DamagedShardNamesTheShard) {
    const std::string dir = sub("damaged");
    const std::string bytes = single_file_writer().bytes();
    mst::test::write_file_bytes(dir + "/model.safetensors", bytes.substr(0, bytes.size() - 3));
    expect_error([&] { Checkpoint::open(dir); }, MST_ERR_BAD_FORMAT, {dir + "/model.safetensors", "lies beyond"});
}

// The shared reference fixtures are real transformers-written checkpoints.
TEST(CheckpointFixtures, EveryFixtureOpensAndReads) {
    const std::string root = mst::test::shared_path("fixtures");
    if (root.empty()) GTEST_SKIP() << "no shared fixtures";
    int opened = 0;
    for (const auto &entry : std::filesystem::directory_iterator(root)) {
        if (!std::filesystem::exists(entry.path() / "model.safetensors")) continue;
        SCOPED_TRACE(entry.path().string());
        const auto ckpt = Checkpoint::open(entry.path().string());
        ASSERT_EQ(ckpt->files().size(), 1u);
        EXPECT_GT(ckpt->tensors().size(), 10u);
        EXPECT_LE(ckpt->total_bytes(), ckpt->file(0).size());
        const TensorInfo *embed = ckpt->find("model.embed_tokens.weight");
        ASSERT_NE(embed, nullptr);
        ASSERT_EQ(embed->shape.size(), 2u);
        EXPECT_EQ(embed->shape[1], 128);  // hidden size of every fixture
        const std::vector<float> values = ckpt->read_f32(*embed);
        ASSERT_EQ(int64_t(values.size()), embed->numel());
        double sum_sq = 0;
        for (const float v : values) {
            ASSERT_TRUE(std::isfinite(v));
            sum_sq += double(v) * v;
        }
        EXPECT_GT(sum_sq, 0.0);  // random weights, not zeros
        ++opened;
    }
    EXPECT_GE(opened, 6);
}

}  // namespace
