// A GGUF file's resident tensors are used in place from a mapping of its data section
// (Checkpoint::map_resident, Checkpoint::mapped) instead of being copied at load, except
// those whose bytes read() changes: llama.cpp's interleaved q/k rows, a joined kv_b_proj.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "core/file_io.h"
#include "format/checkpoint.h"
#include "format/gguf_file.h"
#include "gguf_model_writer.h"
#include "model/loaded_model.h"
#include "model/resident_weights.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;
using mst::test::GgufWeightType;

class GgufResidentMapping : public ::testing::Test {
protected:
    void SetUp() override { dir_ = mst::test::make_temp_dir("gguf_resident_mapping"); }
    void TearDown() override { fs::remove_all(dir_); }

    std::vector<uint8_t> read_bytes(const mst::Checkpoint &c, const mst::TensorInfo &t) {
        std::vector<uint8_t> bytes(size_t(t.nbytes));
        c.read(t, bytes.data());
        return bytes;
    }

    std::string dir_;
};

TEST_F(GgufResidentMapping, TensorsAreServedInPlaceFromTheFile) {
    const std::string path = dir_ + "/q8.gguf";
    mst::test::write_qwen3moe_gguf(mst::test::data_path("qwen3_moe_tiny"), path, GgufWeightType::Q8_0);
    const auto checkpoint = mst::Checkpoint::open(path);
    const mst::TensorInfo &embed = checkpoint->require("model.embed_tokens.weight");
    const mst::TensorInfo &q = checkpoint->require("model.layers.1.self_attn.q_proj.weight");
    EXPECT_EQ(checkpoint->mapped(embed), nullptr);  // nothing mapped before map_resident
    const std::vector<uint8_t> embed_bytes = read_bytes(*checkpoint, embed), q_bytes = read_bytes(*checkpoint, q);

    checkpoint->map_resident(true);
    ASSERT_NE(checkpoint->resident_mapping(), nullptr);
    for (const auto &[t, want] : {std::pair{&embed, &embed_bytes}, std::pair{&q, &q_bytes}}) {
        const uint8_t *mapped = checkpoint->mapped(*t);
        ASSERT_NE(mapped, nullptr) << t->name;
        EXPECT_EQ(reinterpret_cast<uintptr_t>(mapped) % 32, 0u) << t->name;
        EXPECT_EQ(std::memcmp(mapped, want->data(), want->size()), 0) << t->name;
    }

    // ResidentWeights hands out views into the mapping, not copies.
    mst::ResidentWeights weights(*checkpoint);
    const mst::WeightView view = weights.load("model.layers.1.self_attn.q_proj.weight", {q.shape[0], q.shape[1]});
    EXPECT_EQ(view.data, checkpoint->mapped(q));
    EXPECT_EQ(view.dtype, mst::DType::Q8);
    EXPECT_TRUE(view.stable);
}

// llama-architecture files (Mixtral) store q and k rows interleaved; read() puts them back
// in transformers' order, so those two are copied while the others stay mapped.
TEST_F(GgufResidentMapping, ReorderedTensorsAreCopiedNotMapped) {
    const std::string path = dir_ + "/mixtral.gguf";
    mst::test::write_mixtral_gguf(mst::test::data_path("mixtral_tiny"), path, GgufWeightType::F32);
    const auto checkpoint = mst::Checkpoint::open(path);
    checkpoint->map_resident(true);
    const mst::TensorInfo &q = checkpoint->require("model.layers.0.self_attn.q_proj.weight");
    const mst::TensorInfo &v = checkpoint->require("model.layers.0.self_attn.v_proj.weight");
    EXPECT_EQ(checkpoint->mapped(q), nullptr);
    EXPECT_NE(checkpoint->mapped(v), nullptr);

    mst::ResidentWeights weights(*checkpoint);
    const mst::WeightView view = weights.load(q.name, {q.shape[0], q.shape[1]});
    const std::vector<uint8_t> want = read_bytes(*checkpoint, q);
    EXPECT_EQ(std::memcmp(view.data, want.data(), want.size()), 0);
    // The stored (interleaved) rows differ from what read() returns: the copy was needed.
    const mst::File file = mst::File::open_read(path);
    std::vector<uint8_t> stored(want.size());
    file.pread_exact(stored.data(), stored.size(), q.offset);
    EXPECT_NE(stored, want);
}

// DeepSeek-V2/V3 files split kv_b_proj into attn_k_b and attn_v_b; the joined tensor
// exists only as read() builds it.
TEST_F(GgufResidentMapping, JoinedTensorsAreNotMapped) {
    const std::string path = dir_ + "/deepseek.gguf";
    mst::test::write_deepseek2_gguf(mst::test::data_path("deepseek_v3_tiny"), path, GgufWeightType::F32, true);
    const auto checkpoint = mst::Checkpoint::open(path);
    checkpoint->map_resident(true);
    const mst::TensorInfo &kv_b = checkpoint->require("model.layers.0.self_attn.kv_b_proj.weight");
    EXPECT_EQ(checkpoint->mapped(kv_b), nullptr);
    EXPECT_NE(checkpoint->mapped(checkpoint->require("model.layers.0.self_attn.o_proj.weight")), nullptr);
}

// load_model records its steps (bench_decode prints them), the tokenizer's among them, and
// builds a GGUF model over the mapping (the GGUF golden tests check such a model's logits).
TEST_F(GgufResidentMapping, LoadRecordsItsStepsAndCountsMappedWeights) {
    const std::string path = dir_ + "/bf16.gguf";
    mst::test::write_qwen3moe_gguf(mst::test::data_path("qwen3_moe_tiny"), path, GgufWeightType::BF16);
    mst::LoadOptions lo;
    lo.backend = "cpu";
    const auto model = mst::load_model(path, lo);
    std::vector<std::string> names;
    for (const mst::LoadPhase &p : model->load_phases) {
        names.push_back(p.name);
        EXPECT_GE(p.seconds, 0.0) << p.name;
        EXPECT_GE(p.cpu_seconds, 0.0) << p.name;
    }
    const auto has = [&](std::string_view word) {
        return std::any_of(names.begin(), names.end(), [&](const std::string &n) { return n.find(word) != n.npos; });
    };
    EXPECT_TRUE(has("open")) << fmt::format("{}", fmt::join(names, "; "));
    EXPECT_TRUE(has("tokenizer"));
    EXPECT_TRUE(has("resident weights"));
    EXPECT_GT(model->model->sizes().resident_bytes, 0u);
    EXPECT_NE(model->checkpoint->resident_mapping(), nullptr);
}

}  // namespace
