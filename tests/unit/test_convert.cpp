// The converter: what it writes (types, tensors kept and left out, the size it plans for),
// how it refuses (existing output without force, bad options, bad sources, weights that
// cannot be quantized) and that nothing but a complete file ever appears under the
// output name, also when cancelled or failing halfway. zstd blobs decode to the same
// model as plain ones.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "convert/convert_plan.h"
#include "core/error.h"
#include "core/output_file.h"
#include "expect_error.h"
#include "format/checkpoint.h"
#include "format/model_config.h"
#include "format/packed_format.h"
#include "format/safetensors.h"
#include "core/file_io.h"
#include "moestream.hpp"
#include "packed_test_support.h"
#include "safetensors_writer.h"
#include "test_paths.h"

namespace mst {
namespace {

namespace fs = std::filesystem;

const std::vector<int32_t> kPrompt = {1, 87, 85, 259, 201, 39, 408, 262, 413, 412, 346, 329};

class Convert : public ::testing::Test {
protected:
    void SetUp() override {
        tmp_ = test::make_temp_dir("mst_convert_");
        ASSERT_FALSE(tmp_.empty());
        src_ = test::data_path("qwen3_moe_tiny");
    }
    void TearDown() override { fs::remove_all(tmp_); }

    // Files in the temporary directory whose name contains ".tmp." (a converter's).
    std::vector<std::string> leftovers() const {
        std::vector<std::string> found;
        for (const auto &entry : fs::directory_iterator(tmp_))
            if (entry.path().filename().string().find(".tmp.") != std::string::npos) found.push_back(entry.path());
        return found;
    }

    mst_status convert(const std::string &src, const std::string &dst, mst_convert_params *p = nullptr) {
        mst_convert_params defaults;
        mst_convert_default_params(&defaults);
        return mst_convert(src.c_str(), dst.c_str(), p ? p : &defaults, nullptr);
    }

    static std::vector<float> logits(const std::string &path) {
        mst_model_params p = mst::model_params();
        p.backend = "cpu";
        const mst::ModelHandle model(path, p);
        mst::SessionHandle session(model);
        session.eval(kPrompt);
        return session.logits();
    }

    // A copy of the tiny checkpoint whose model.safetensors can be edited (without the
    // reference outputs, which a directory without index would take for a shard).
    std::string copy_source() {
        const std::string dir = tmp_ + "/src";
        fs::create_directories(dir);
        for (const auto &entry : fs::directory_iterator(src_))
            if (entry.path().filename() != "golden.safetensors")
                fs::copy_file(entry.path(), dir + "/" + entry.path().filename().string());
        return dir;
    }

    std::string tmp_, src_;
};

TEST_F(Convert, WritesTheRequestedTypes) {
    const std::string out = tmp_ + "/m.mst";
    const mst_convert_report r = test::convert_checkpoint_for_test(src_, out, "q4", "q8");
    EXPECT_EQ(r.file_bytes, fs::file_size(out));
    EXPECT_EQ(r.expert_blobs, 16u);  // 2 MoE layers x 8 experts
    EXPECT_EQ(r.dropped_tensors, 0u);
    EXPECT_GT(r.quantized_tensors, 0u);
    const auto ck = Checkpoint::open(out);
    ASSERT_NE(ck->packed(), nullptr);
    EXPECT_EQ(ck->require("model.layers.0.self_attn.q_proj.weight").dtype, DType::Q8);
    EXPECT_EQ(ck->require("model.embed_tokens.weight").dtype, DType::Q8);
    EXPECT_EQ(ck->require("lm_head.weight").dtype, DType::Q8);
    EXPECT_EQ(ck->require("model.layers.1.mlp.gate_proj.weight").dtype, DType::Q8);  // dense MLP layer
    EXPECT_EQ(ck->require("model.layers.0.mlp.gate.weight").dtype, DType::BF16);     // router: kept
    EXPECT_EQ(ck->require("model.layers.0.input_layernorm.weight").dtype, DType::BF16);
    EXPECT_EQ(ck->find("model.layers.0.mlp.experts.0.gate_proj.weight"), nullptr);  // in the blobs
    const ExpertLayout &e = ck->packed()->experts.at(0).at(5);
    ASSERT_EQ(e.parts.size(), 3u);
    for (const ExpertMatrix &m : e.parts) EXPECT_EQ(m.dtype, DType::Q4);
    EXPECT_EQ(e.parts[2].rows, 64);  // down [H][I]
    EXPECT_EQ(e.parts[2].cols, 32);
    for (const auto &layer : ck->packed()->experts)
        for (const ExpertLayout &x : layer) EXPECT_EQ(x.blob->offset % 4096, 0u);
    const std::string *info = ck->packed()->find_metadata(packed::kConversionKey);
    ASSERT_NE(info, nullptr);
    EXPECT_NE(info->find("\"q4\""), std::string::npos);
    ASSERT_NE(ck->packed()->find_metadata(packed::kTokenizerKey), nullptr);
    EXPECT_EQ(*ck->packed()->find_metadata(packed::kConfigKey), read_text_file(src_ + "/config.json", 1 << 20));
}

TEST_F(Convert, RefusesToOverwriteWithoutForce) {
    const std::string out = tmp_ + "/m.mst";
    test::write_file_bytes(out, "precious");
    EXPECT_EQ(convert(src_, out), MST_ERR_IO);
    const std::string message = mst_last_error();
    EXPECT_NE(message.find(out), std::string::npos) << message;
    EXPECT_NE(message.find("--force"), std::string::npos) << message;
    EXPECT_EQ(read_text_file(out, 100), "precious");
    mst_convert_params p;
    mst_convert_default_params(&p);
    p.force = 1;
    ASSERT_EQ(convert(src_, out, &p), MST_OK) << mst_last_error();
    EXPECT_NE(Checkpoint::open(out)->packed(), nullptr);
    EXPECT_TRUE(leftovers().empty());
}

int cancel_halfway(uint64_t done, uint64_t total, void *calls) {
    ++*static_cast<int *>(calls);
    return done * 2 >= total ? 1 : 0;
}

int count_progress(uint64_t done, uint64_t total, void *state) {
    auto *last = static_cast<uint64_t *>(state);
    EXPECT_GE(done, last[0]);  // never goes back
    EXPECT_LE(done, total);
    last[0] = done;
    last[1] = total;
    return 0;
}

TEST_F(Convert, ProgressReachesTheTotalAndCancelLeavesNothing) {
    const std::string out = tmp_ + "/m.mst";
    mst_convert_params p;
    mst_convert_default_params(&p);
    uint64_t state[2] = {0, 0};
    p.progress = count_progress;
    p.progress_user_data = state;
    ASSERT_EQ(convert(src_, out, &p), MST_OK) << mst_last_error();
    EXPECT_GT(state[1], 0u);
    EXPECT_EQ(state[0], state[1]);
    fs::remove(out);

    int calls = 0;
    p.progress = cancel_halfway;
    p.progress_user_data = &calls;
    EXPECT_EQ(convert(src_, out, &p), MST_ERR_CANCELLED);
    EXPECT_GT(calls, 0);
    EXPECT_FALSE(fs::exists(out));
    EXPECT_TRUE(leftovers().empty());
}

TEST_F(Convert, WeightsThatCannotBeQuantizedFailNamingThem) {
    const std::string src = copy_source();
    const std::string st = src + "/model.safetensors";
    const SafetensorsHeader header = read_safetensors_header(File::open_read(st));
    const TensorInfo *target = nullptr;
    for (const TensorInfo &t : header.tensors)
        if (t.name == "model.layers.2.mlp.experts.down_proj" || t.name == "model.layers.2.mlp.experts.5.down_proj.weight")
            target = &t;
    ASSERT_NE(target, nullptr);
    // A bf16 NaN in the last row of expert 5's down projection (fused: of the last expert).
    {
        std::fstream f(st, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(std::streamoff(target->offset + target->nbytes - 2));
        const char nan[2] = {char(0xc0), char(0x7f)};
        f.write(nan, 2);
    }
    const std::string out = tmp_ + "/m.mst";
    mst_convert_params p;
    mst_convert_default_params(&p);
    p.experts = "q8";
    EXPECT_EQ(convert(src, out, &p), MST_ERR_UNSUPPORTED);
    const std::string message = mst_last_error();
    EXPECT_NE(message.find(src), std::string::npos) << message;
    EXPECT_NE(message.find("layer 2 expert " + std::string(target->name.find("experts.5") != std::string::npos ? "5" : "7") +
                           " part 2 row 63"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("not finite"), std::string::npos) << message;
    EXPECT_FALSE(fs::exists(out));
    EXPECT_TRUE(leftovers().empty());
    // Kept as stored, the same weights convert.
    p.experts = "bf16";
    EXPECT_EQ(convert(src, out, &p), MST_OK) << mst_last_error();
}

TEST_F(Convert, BadArgumentsAndSources) {
    const std::string out = tmp_ + "/m.mst";
    mst_convert_params p;
    mst_convert_default_params(&p);
    p.experts = "q3";
    EXPECT_EQ(convert(src_, out, &p), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("'q3'"), std::string::npos);
    mst_convert_default_params(&p);
    p.dense = "q4";  // dense weights go to q8 only
    EXPECT_EQ(convert(src_, out, &p), MST_ERR_INVALID_ARGUMENT);
    mst_convert_default_params(&p);
    p.zstd_level = 30;
    EXPECT_EQ(convert(src_, out, &p), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("zstd level 30"), std::string::npos);
    EXPECT_EQ(convert(tmp_ + "/missing", out), MST_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(mst_convert(nullptr, out.c_str(), nullptr, nullptr), MST_ERR_INVALID_ARGUMENT);

    // A packed file is not a source.
    test::convert_checkpoint_for_test(src_, out);
    EXPECT_EQ(convert(out, tmp_ + "/again.mst"), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("neither a checkpoint directory nor a GGUF file"), std::string::npos);

    // An architecture this build lacks.
    const std::string src = copy_source();
    std::string config = read_text_file(src + "/config.json", 1 << 20);
    config.replace(config.find("\"qwen3_moe\""), 11, "\"not_a_moe\"");
    test::write_file_bytes(src + "/config.json", config);
    EXPECT_EQ(convert(src, tmp_ + "/x.mst"), MST_ERR_UNSUPPORTED);
    EXPECT_TRUE(leftovers().empty());
    EXPECT_FALSE(fs::exists(tmp_ + "/x.mst"));
}

TEST_F(Convert, TensorsTheArchitectureNeverReadsAreLeftOut) {
    const std::string src = copy_source();
    // An extra shard with a tensor no Qwen3-MoE code reads.
    fs::rename(src + "/model.safetensors", src + "/model-00001-of-00002.safetensors");
    test::SafetensorsWriter extra;
    extra.add_f32("model.unused_buffer", {4}, {1, 2, 3, 4});
    extra.write(src + "/model-00002-of-00002.safetensors");
    const std::string out = tmp_ + "/m.mst";
    const mst_convert_report r = test::convert_checkpoint_for_test(src, out);
    EXPECT_EQ(r.dropped_tensors, 1u);
    EXPECT_EQ(Checkpoint::open(out)->find("model.unused_buffer"), nullptr);
    EXPECT_EQ(logits(out), logits(src));
}

TEST_F(Convert, PlannedSizeBoundsTheFile) {
    for (const char *experts : {"bf16", "q8", "q4"}) {
        const std::string out = tmp_ + "/m.mst";
        const mst_convert_report r = test::convert_checkpoint_for_test(src_, out, experts, "q8");
        auto source = Checkpoint::open(src_);
        ConvertOptions options;
        options.experts = std::string(experts) == "bf16" ? std::nullopt : std::optional<DType>(
                                                                               std::string(experts) == "q8" ? DType::Q8 : DType::Q4);
        options.dense = DType::Q8;
        const ConvertPlan plan = plan_conversion(*source, parse_model_config_file(src_ + "/config.json"), options);
        EXPECT_LE(r.file_bytes, plan.max_output_bytes + 64 * 1024) << experts;  // + the metadata
        EXPECT_EQ(plan.source_bytes, r.source_bytes) << experts;
    }
}

TEST_F(Convert, FreeSpaceIsQueriedWhereTheFileGoes) {
    EXPECT_GT(free_disk_bytes(tmp_), 0u);
    test::expect_error([&] { free_disk_bytes(tmp_ + "/missing/dir"); }, MST_ERR_IO, {"missing/dir", "free space"});
}

TEST_F(Convert, ZstdBlobsDecodeToTheSameModel) {
    const std::string plain = tmp_ + "/plain.mst", packed_zstd = tmp_ + "/zstd.mst";
    test::convert_checkpoint_for_test(src_, plain, "bf16");
    const mst_convert_report r = test::convert_checkpoint_for_test(src_, packed_zstd, "bf16", "bf16", 19);
    // bf16 weights compress (their exponent bytes repeat); q4 codes barely do.
    EXPECT_GT(r.compressed_blobs, 0u);
    EXPECT_LT(r.expert_stored_bytes, r.expert_raw_bytes);  // (the file keeps 4 KiB blob alignment)
    EXPECT_EQ(logits(packed_zstd), logits(plain));
    const std::string q4 = tmp_ + "/q4.mst", q4_zstd = tmp_ + "/q4z.mst";
    test::convert_checkpoint_for_test(src_, q4, "q4");
    test::convert_checkpoint_for_test(src_, q4_zstd, "q4", "bf16", 3);
    EXPECT_EQ(logits(q4_zstd), logits(q4));
}

TEST_F(Convert, PackedModelReportsItsSizes) {
    const std::string out = tmp_ + "/m.mst";
    test::convert_checkpoint_for_test(src_, out, "q4");
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    const mst::ModelHandle packed(out, p), dir(src_, p);
    EXPECT_EQ(packed.info().n_params_total, dir.info().n_params_total);
    EXPECT_EQ(packed.info().n_moe_layers, 2);
    // q4 experts: 20 bytes per 32 weights instead of 64.
    EXPECT_EQ(packed.info().expert_bytes_each * 64, dir.info().expert_bytes_each * 20);
    EXPECT_EQ(packed.tokenize("Hello world"), dir.tokenize("Hello world"));
}

// FP8 checkpoints shrink as bf16 ones do: q4 / q8 experts and q8 dense weights are
// requantized from the FP8 values (their scales folded in and not written), and what
// an option leaves as stored is said in the report's notes.
TEST_F(Convert, Fp8WeightsAreRequantizedAndWhatStaysIsSaid) {
    const std::string src = test::data_path("deepseek_v3_fp8"), out = tmp_ + "/m.mst";
    const auto dir = Checkpoint::open(src);
    const mst_convert_report r = test::convert_checkpoint_for_test(src, out, "q4", "q8");
    const auto ck = Checkpoint::open(out);
    ASSERT_NE(ck->packed(), nullptr);
    for (const auto &layer : ck->packed()->experts)
        for (const ExpertLayout &e : layer) {
            ASSERT_EQ(e.parts.size(), 3u);  // gate, up, down: no scales left
            for (const ExpertMatrix &m : e.parts) EXPECT_EQ(m.dtype, DType::Q4);
        }
    const std::string q = "model.layers.1.self_attn.q_b_proj.weight";
    ASSERT_EQ(dir->require(q).dtype, DType::F8_E4M3);
    EXPECT_EQ(ck->require(q).dtype, DType::Q8);
    EXPECT_EQ(ck->find(q + "_scale_inv"), nullptr);
    EXPECT_GT(r.requantized_fp8_tensors, 0u);
    // kv_b_proj is also multiplied transposed: it stays FP8, with its scales, and is named.
    const std::string kv_b = "model.layers.1.self_attn.kv_b_proj.weight";
    EXPECT_EQ(ck->require(kv_b).dtype, DType::F8_E4M3);
    EXPECT_NE(ck->find(kv_b + "_scale_inv"), nullptr);
    ASSERT_NE(r.notes, nullptr);
    EXPECT_NE(std::string(r.notes).find("--dense q8"), std::string::npos) << r.notes;
    EXPECT_LT(r.expert_raw_bytes * 3, dir->total_bytes());

    // --experts bf16 keeps FP8 experts as stored, and says so.
    const mst_convert_report kept = test::convert_checkpoint_for_test(src, out, "bf16", "bf16");
    const std::string notes = kept.notes ? kept.notes : "";
    EXPECT_NE(notes.find("--experts bf16: 96 FP8 expert matrices kept as stored"), std::string::npos) << notes;
    EXPECT_NE(notes.find("FP8 dense weights kept as stored"), std::string::npos) << notes;
    EXPECT_EQ(Checkpoint::open(out)->packed()->experts.at(1).at(0).parts.at(0).dtype, DType::F8_E4M3);
}

}  // namespace
}  // namespace mst
