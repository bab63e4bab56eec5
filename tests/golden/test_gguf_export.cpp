// `moestream convert MODEL.mst OUT.gguf` (convert/gguf_export.h): a packed file written as
// GGUF keeps its bytes, so moestream computes the same logits from the GGUF as from the
// packed file (q4 experts as Q4_1, q8 dense weights as Q8_0, bf16 as BF16), and what GGUF or
// llama.cpp cannot take is refused naming it.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "convert/gguf_export.h"
#include "convert/gguf_export_edits.h"
#include "core/error.h"
#include "core/file_io.h"
#include "expect_error.h"
#include "format/checkpoint.h"
#include "format/gguf_file.h"
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
        return packed_from(mst::test::data_path(checkpoint), checkpoint, experts, dense);
    }
    // `moestream convert src OUT.mst --experts experts --dense dense`, named after `name`.
    std::string packed_from(const std::string &src, const std::string &name, const char *experts, const char *dense) {
        const std::string out = dir_ + "/" + name + "_" + experts + "_" + dense + ".mst";
        mst_convert_params p;
        mst_convert_default_params(&p);
        p.experts = experts;
        p.dense = dense;
        p.n_threads = 2;
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

// qwen3_5_moe_text as llama.cpp's qwen35moe: the converter's changes (-exp(A_log), 1 + w
// norms, conv1d squeezed to F32, the shared expert's gate a vector, the value heads tiled since
// these models have 4 value heads on 2 key heads) are made on the way out, and moestream's
// reader undoes them, so the GGUF gives the packed file's logits: the transformers reference's
// where the weights stay bf16. A q8 out_proj has its Q8_0 blocks moved whole (32-wide value
// heads). The ../shared fixture is a second, independently made checkpoint (skipped without it).
TEST_F(GgufExport, Qwen35MoeAsQwen35moe) {
    struct Case {
        std::string name, src;
        const char *experts, *dense;
        size_t moe_layers;
        double max_vs_reference;  // bf16 weights only
    };
    std::vector<Case> cases = {
        // measured 2.3e-7, as the checkpoint directory itself
        {"qwen3_5_moe_trained", mst::test::data_path("qwen3_5_moe_trained"), "bf16", "bf16", 8, 2e-6},
        {"qwen3_5_moe_trained", mst::test::data_path("qwen3_5_moe_trained"), "bf16", "q8", 8, 0},
    };
    if (const std::string shared = mst::test::shared_path("fixtures/qwen3_5_moe"); !shared.empty()) {
        // measured 1.7e-5, as the checkpoint directory: the fixture's logits were computed with
        // RoPE frequencies rounded to bf16 (test_golden_qwen3_5_moe.cpp), moestream keeps f32
        cases.push_back({"shared_qwen3_5_moe", shared, "bf16", "bf16", 4, 4e-5});
        cases.push_back({"shared_qwen3_5_moe", shared, "q8", "q8", 4, 0});  // 64-wide expert rows: whole Q8_0 blocks
    }
    for (const Case &c : cases) {
        SCOPED_TRACE(c.name + ": experts " + c.experts + ", dense " + c.dense);
        const mst::test::Golden golden = mst::test::load_golden(c.src + "/golden.safetensors");
        const std::string mst_path = packed_from(c.src, c.name, c.experts, c.dense);
        const std::string gguf = mst_path + ".gguf";
        const mst::GgufExportReport r = mst::export_gguf(mst_path, gguf, false);
        EXPECT_EQ(r.file_bytes, fs::file_size(gguf));
        EXPECT_EQ(r.expert_tensors, 3 * c.moe_layers);
        {
            // Under llama.cpp's names and shapes: a vector shared-expert gate, conv1d [kernel, channels] F32.
            const mst::GgufFile file = mst::read_gguf(mst::File::open_read(gguf));
            EXPECT_EQ(file.require_string("general.architecture"), "qwen35moe");
            EXPECT_EQ(file.require_uint("qwen35moe.ssm.time_step_rank"), 4u);
            const mst::GgufTensor *gate = file.find_tensor("blk.0.ffn_gate_inp_shexp.weight");
            ASSERT_NE(gate, nullptr);
            EXPECT_EQ(gate->ne.size(), 1u);
            const mst::GgufTensor *conv = file.find_tensor("blk.0.ssm_conv1d.weight");
            ASSERT_NE(conv, nullptr);
            EXPECT_EQ(conv->type, mst::ggml_type::F32);
            EXPECT_EQ(conv->ne.size(), 2u);
            ASSERT_NE(file.find_tensor("blk.0.ssm_a"), nullptr);
        }
        const std::vector<float> from_packed = mst::test::prompt_logits(mst_path, golden.input_ids);
        const std::vector<float> from_gguf = mst::test::prompt_logits(gguf, golden.input_ids);
        ASSERT_EQ(from_packed.size(), from_gguf.size());
        const double vs_packed =
            mst::test::relative_error(from_gguf.data(), from_packed.data(), int64_t(from_packed.size()));
        std::printf("%s experts %s dense %s: GGUF vs packed %.2e\n", c.name.c_str(), c.experts, c.dense, vs_packed);
        EXPECT_LT(vs_packed, 1e-6);  // measured 0: the reader undoes the edits exactly here
        if (c.max_vs_reference > 0) {
            ASSERT_EQ(from_gguf.size(), golden.logits().size());
            const double vs_ref = mst::test::relative_error(from_gguf.data(), golden.logits().data(), int64_t(from_gguf.size()));
            std::printf("  GGUF vs transformers %.2e\n", vs_ref);
            EXPECT_LT(vs_ref, c.max_vs_reference);
        }
    }
}

// The export's edits for qwen35moe that cannot be made: a quantized out_proj whose blocks the
// value heads' reorder would cut, a conv1d of another shape.
TEST(GgufExportEdit, NamesWhatTheValueHeadReorderCannotTake) {
    const nlohmann::json config = {{"linear_num_key_heads", 2}, {"linear_num_value_heads", 4},
                                   {"linear_key_head_dim", 16}, {"linear_value_head_dim", 24}};
    const auto tensor = [](const char *part, mst::DType dtype, std::vector<int64_t> shape) {
        mst::TensorInfo t;
        t.name = std::string("model.layers.0.linear_attn.") + part;
        t.dtype = dtype;
        t.shape = std::move(shape);
        return t;
    };
    mst::TensorInfo out_proj = tensor("out_proj.weight", mst::DType::Q8, {64, 96});
    mst::test::expect_error([&] { mst::gguf_export_edit("qwen35moe", out_proj, config); }, MST_ERR_UNSUPPORTED,
                            {"out_proj", "cut", "24 columns"});
    out_proj.dtype = mst::DType::BF16;  // one element per value: moved column by column
    EXPECT_EQ(mst::gguf_export_edit("qwen35moe", out_proj, config).how.column_order,
              (std::vector<int64_t>{0, 2, 1, 3}));
    const mst::TensorInfo conv = tensor("conv1d.weight", mst::DType::BF16, {160, 4});
    mst::test::expect_error([&] { mst::gguf_export_edit("qwen35moe", conv, config); }, MST_ERR_BAD_FORMAT,
                            {"conv1d", "[channels, 1, kernel]"});
    const mst::TensorInfo z = tensor("in_proj_z.weight", mst::DType::BF16, {95, 64});
    mst::test::expect_error([&] { mst::gguf_export_edit("qwen35moe", z, config); }, MST_ERR_BAD_FORMAT,
                            {"in_proj_z", "95 rows", "96"});
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
