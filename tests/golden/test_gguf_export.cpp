// `moestream convert MODEL.mst OUT.gguf` (convert/gguf_export.h): a packed file written as
// GGUF keeps its bytes, so moestream computes the same logits from the GGUF as from the
// packed file (q4 experts as Q4_1, q8 dense weights as Q8_0, bf16 as BF16), and what GGUF or
// llama.cpp cannot take is refused naming it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "convert/gguf_export.h"
#include "core/error.h"
#include "expect_error.h"
#include "format/checkpoint.h"
#include "format/gguf_types.h"
#include "golden.h"
#include "prompt_logits.h"
#include "synthetic_checkpoint.h"
#include "moestream.hpp"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;

class GgufExport : public ::testing::Test {
protected:
    void SetUp() override { dir_ = mst::test::make_temp_dir("gguf_export"); }
    void TearDown() override { fs::remove_all(dir_); }

    std::string packed(const std::string &checkpoint, const char *experts, const char *dense) {
        const std::string out = dir_ + "/" + checkpoint + "_" + experts + "_" + dense + ".mst";
        mst_convert_params p;
        mst_convert_default_params(&p);
        p.experts = experts;
        p.dense = dense;
        p.n_threads = 2;
        const std::string src = mst::test::data_path(checkpoint);
        EXPECT_EQ(mst_convert(src.c_str(), out.c_str(), &p, nullptr), MST_OK) << mst_last_error();
        return out;
    }

    std::string dir_;
};

TEST_F(GgufExport, SameLogitsAsThePackedFileForEachStoredType) {
    const std::string data = mst::test::data_path("qwen3_moe_trained");
    const mst::test::Golden golden = mst::test::load_golden(data + "/golden.safetensors");
    const std::pair<const char *, const char *> kinds[] = {{"q4", "q8"}, {"q8", "bf16"}, {"bf16", "bf16"}};
    for (const auto &[experts, dense] : kinds) {
        SCOPED_TRACE(std::string("experts ") + experts + ", dense " + dense);
        const std::string mst_path = packed("qwen3_moe_trained", experts, dense);
        const std::string gguf = mst_path + ".gguf";
        const mst::GgufExportReport r = mst::export_gguf(mst_path, gguf, false);
        EXPECT_EQ(r.file_bytes, fs::file_size(gguf));
        EXPECT_EQ(r.expert_tensors, 18u);  // 6 layers x gate, up, down

        // The stacked experts carry the packed type under its GGUF name.
        const auto ckpt = mst::Checkpoint::open(gguf);
        const mst::TensorInfo &gate = ckpt->require("model.layers.0.mlp.experts.3.gate_proj.weight");
        const uint32_t want = std::string(experts) == "q4"   ? mst::ggml_type::Q4_1
                              : std::string(experts) == "q8" ? mst::ggml_type::Q8_0
                                                             : mst::ggml_type::BF16;
        EXPECT_EQ(mst::dtype_to_ggml_type(gate.dtype), want);

        const std::vector<float> from_packed = mst::test::prompt_logits(mst_path, golden.input_ids);
        const std::vector<float> from_gguf = mst::test::prompt_logits(gguf, golden.input_ids);
        ASSERT_EQ(from_packed.size(), from_gguf.size());
        EXPECT_LT(mst::test::relative_error(from_gguf.data(), from_packed.data(), int64_t(from_packed.size())), 1e-6);
    }
}

// deepseek_v3 as llama.cpp's deepseek2 (kv_b_proj kept whole as attn_kv_b, which llama.cpp
// v0.5.0 runs): the leading dense layer, MLA, the shared expert and the router's correction
// bias come through, and the GGUF gives the packed file's logits, which are the transformers
// reference's (bf16 kept: float arithmetic on the same weights).
TEST_F(GgufExport, DeepSeekV3AsDeepseek2) {
    const std::string data = mst::test::data_path("deepseek_v3_trained");
    const mst::test::Golden golden = mst::test::load_golden(data + "/golden.safetensors");
    const std::string mst_path = packed("deepseek_v3_trained", "bf16", "bf16");
    const std::string gguf = mst_path + ".gguf";
    const mst::GgufExportReport r = mst::export_gguf(mst_path, gguf, false);
    EXPECT_EQ(r.expert_tensors, 15u);  // layers 1-5 x gate, up, down; layer 0 is dense
    EXPECT_EQ(r.file_bytes, fs::file_size(gguf));
    const auto ckpt = mst::Checkpoint::open(gguf);
    EXPECT_NE(ckpt->find("model.layers.0.mlp.gate_proj.weight"), nullptr);
    EXPECT_NE(ckpt->find("model.layers.1.mlp.shared_experts.down_proj.weight"), nullptr);
    EXPECT_NE(ckpt->find("model.layers.5.mlp.gate.e_score_correction_bias"), nullptr);
    EXPECT_NE(ckpt->find("model.layers.2.self_attn.kv_b_proj.weight"), nullptr);

    const std::vector<float> from_packed = mst::test::prompt_logits(mst_path, golden.input_ids);
    const std::vector<float> from_gguf = mst::test::prompt_logits(gguf, golden.input_ids);
    ASSERT_EQ(from_packed.size(), from_gguf.size());
    ASSERT_EQ(from_gguf.size(), golden.logits().size());
    EXPECT_LT(mst::test::relative_error(from_gguf.data(), from_packed.data(), int64_t(from_packed.size())), 1e-6);
    // measured 2.3e-7, as the checkpoint directory itself
    EXPECT_LT(mst::test::relative_error(from_gguf.data(), golden.logits().data(), int64_t(from_gguf.size())), 2e-6);
}

// K-quant experts (convert --experts q2k..q6k) on rows of whole super-blocks (a synthetic
// Qwen3-MoE of hidden size 256 and expert rows of 256) keep their type and bytes. Their
// logits against the transformers reference: tests/golden/test_golden_trained256.cpp.
TEST_F(GgufExport, KQuantExpertsKeepTheirTypeAndLogits) {
    mst::test::SyntheticShape shape;
    shape.experts = 8;
    shape.expert_ffn = 256;
    const std::string src = dir_ + "/synthetic256";
    fs::create_directories(src);
    mst::test::write_synthetic_qwen3_moe(src, shape);
    const std::vector<int32_t> ids = {1, 87, 85, 259, 201, 39, 408, 262, 413};
    for (const char *experts : {"q2k", "q3k", "q4k", "q5k", "q6k"}) {
        SCOPED_TRACE(std::string("experts ") + experts);
        const std::string mst_path = dir_ + "/" + experts + ".mst", gguf = mst_path + ".gguf";
        mst_convert_params p;
        mst_convert_default_params(&p);
        p.experts = experts;
        p.dense = "q8";
        p.n_threads = 2;
        ASSERT_EQ(mst_convert(src.c_str(), mst_path.c_str(), &p, nullptr), MST_OK) << mst_last_error();
        const mst::GgufExportReport r = mst::export_gguf(mst_path, gguf, false);
        EXPECT_EQ(r.file_bytes, fs::file_size(gguf));
        const auto ckpt = mst::Checkpoint::open(gguf);
        EXPECT_EQ(mst::dtype_name(ckpt->require("model.layers.1.mlp.experts.6.down_proj.weight").dtype),
                  std::string("Q") + experts[1] + "_K");
        const std::vector<float> from_packed = mst::test::prompt_logits(mst_path, ids);
        const std::vector<float> from_gguf = mst::test::prompt_logits(gguf, ids);
        ASSERT_EQ(from_packed.size(), from_gguf.size());
        EXPECT_LT(mst::test::relative_error(from_gguf.data(), from_packed.data(), int64_t(from_packed.size())), 1e-6);
    }
}

TEST_F(GgufExport, RefusesWhatGgufOrLlamaCppCannotTake) {
    const std::string gguf = dir_ + "/out.gguf";
    // Not a packed file: a checkpoint directory.
    const std::string dir = mst::test::data_path("qwen3_moe_trained");
    mst::test::expect_error([&] { mst::export_gguf(dir, gguf, false); }, MST_ERR_INVALID_ARGUMENT,
                            {"not a packed .mst file"});
    // An architecture the export does not write.
    const std::string mixtral = packed("mixtral_tiny", "q8", "bf16");
    mst::test::expect_error([&] { mst::export_gguf(mixtral, gguf, false); }, MST_ERR_UNSUPPORTED, {"mixtral"});
    // A dense layer (qwen3_moe_tiny's mlp_only_layers), which llama.cpp's qwen3moe lacks.
    const std::string dense = packed("qwen3_moe_tiny", "q8", "bf16");
    mst::test::expect_error([&] { mst::export_gguf(dense, gguf, false); }, MST_ERR_UNSUPPORTED, {"layer 1", "dense"});
    // zstd-compressed experts.
    const std::string zstd = dir_ + "/zstd.mst";
    mst_convert_params p;
    mst_convert_default_params(&p);
    p.zstd_level = 3;
    const std::string src = mst::test::data_path("qwen3_moe_trained");
    ASSERT_EQ(mst_convert(src.c_str(), zstd.c_str(), &p, nullptr), MST_OK) << mst_last_error();
    mst::test::expect_error([&] { mst::export_gguf(zstd, gguf, false); }, MST_ERR_UNSUPPORTED, {"zstd"});
    EXPECT_FALSE(fs::exists(gguf));
    // K-quant experts whose rows (128 wide) the packed file padded to one 256-element
    // super-block, which a GGUF tensor cannot hold.
    const std::string padded = packed("qwen3_moe_trained", "q4k", "bf16");
    mst::test::expect_error([&] { mst::export_gguf(padded, gguf, false); }, MST_ERR_UNSUPPORTED,
                            {"layer 0", "Q4_K", "rows of 128 elements", "256-element"});
    EXPECT_FALSE(fs::exists(gguf));
    // An existing destination without force.
    std::ofstream(gguf) << "x";
    const std::string fine = packed("qwen3_moe_trained", "q8", "bf16");
    mst::test::expect_error([&] { mst::export_gguf(fine, gguf, false); }, MST_ERR_IO, {"exists"});
}

}  // namespace
