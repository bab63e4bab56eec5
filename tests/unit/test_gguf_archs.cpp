// GGUF files of deepseek2, gpt-oss, qwen35moe and qwen3next, written from the reference
// checkpoints as llama.cpp's converter lays them out (tests/support/gguf_model_writer),
// open as checkpoints that hold every tensor the model reads under its Hugging Face name,
// with the shape and values the checkpoint has: the converter's splits, transposes,
// reorders and value changes undone. Metadata errors of each architecture are named.
// A model split by gguf-split opens from its first shard.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <string>

#include "expect_error.h"
#include "format/checkpoint.h"
#include "format/packed_format.h"
#include "model/model_files.h"
#include "golden.h"
#include "gguf_builder.h"
#include "gguf_logits.h"
#include "gguf_model_writer.h"
#include "gguf_split_writer.h"
#include "moestream.hpp"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;
using mst::test::GgufBuilder;
using mst::test::GgufWeightType;

struct ArchCase {
    std::string checkpoint;
    std::function<void(const std::string &, const std::string &)> write;  // (checkpoint dir, gguf path)
    // Tensors whose values pass through a float function (exp/log, + 1 - 1): equal within
    // float rounding rather than bit for bit.
    std::vector<std::string> rounded;
};

void PrintTo(const ArchCase &c, std::ostream *os) { *os << c.checkpoint; }

std::vector<ArchCase> arch_cases() {
    const auto deepseek = [](bool split) {
        return [split](const std::string &dir, const std::string &path) {
            mst::test::write_deepseek2_gguf(dir, path, GgufWeightType::F32, split);
        };
    };
    const auto plain = [](void (*write)(const std::string &, const std::string &, GgufWeightType)) {
        return [write](const std::string &dir, const std::string &path) { write(dir, path, GgufWeightType::F32); };
    };
    const std::vector<std::string> hybrid_rounded = {"A_log", "layernorm.weight", "q_norm.weight", "k_norm.weight",
                                                     "model.norm.weight"};
    return {{"deepseek_v3_tiny", deepseek(true), {}},
            {"kimi_k2_tiny", deepseek(false), {}},
            {"gpt_oss_tiny", plain(mst::test::write_gpt_oss_gguf), {}},
            {"qwen3_5_moe_tiny", plain(mst::test::write_qwen_hybrid_gguf), hybrid_rounded},
            {"qwen3_next_tiny", plain(mst::test::write_qwen_hybrid_gguf), hybrid_rounded}};
}

class GgufArchTensors : public ::testing::TestWithParam<ArchCase> {};

TEST_P(GgufArchTensors, EveryCheckpointTensorReadsBackUnderItsName) {
    const ArchCase &c = GetParam();
    const std::string data = mst::test::data_path(c.checkpoint);
    const std::string dir = mst::test::make_temp_dir("gguf_arch_tensors");
    const std::string path = dir + "/model.gguf";
    c.write(data, path);
    const auto gguf = mst::Checkpoint::open(path);
    const auto hf = mst::Checkpoint::open(data);
    for (const mst::TensorInfo &t : hf->tensors()) {
        // gpt-oss's fused experts, which the converter splits: the model reads their parts,
        // which the golden tests check through the logits.
        if (t.name.find("mlp.experts.gate_up_proj") != std::string::npos ||
            t.name.find("mlp.experts.down_proj") != std::string::npos)
            continue;
        const mst::TensorInfo *g = gguf->find(t.name);
        ASSERT_NE(g, nullptr) << t.name;
        ASSERT_EQ(g->shape, t.shape) << t.name;
        const std::vector<float> want = hf->read_f32(t), got = gguf->read_f32(*g);
        bool rounded = false;
        for (const std::string &part : c.rounded) rounded = rounded || t.name.find(part) != std::string::npos;
        if (!rounded) {
            EXPECT_EQ(got, want) << t.name;
            continue;
        }
        for (size_t i = 0; i < want.size(); ++i)
            EXPECT_NEAR(got[i], want[i], 1e-6 * (1 + std::fabs(want[i]))) << t.name << " [" << i << "]";
    }
    fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Tiny, GgufArchTensors, ::testing::ValuesIn(arch_cases()),
                         [](const auto &param_info) { return param_info.param.checkpoint; });

// The logits of every prompt position, from a fresh session of the model at `path`, its
// experts streamed through a zero-byte cache.
std::vector<float> prompt_logits(const std::string &path, const std::vector<int32_t> &ids) {
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    p.expert_cache_bytes = 0;
    return mst::test::prompt_logits(mst::ModelHandle(path, p), ids);
}

// A model cut by gguf-split opens from its first shard and computes what the whole file
// computes, bit for bit; a later shard, a missing one and a mismatched one are named.
TEST(GgufSplit, ShardsOpenFromTheFirstAndMatchTheWholeFile) {
    const std::string dir = mst::test::make_temp_dir("gguf_split");
    const std::string whole = dir + "/whole.gguf";
    mst::test::write_qwen3moe_gguf(mst::test::data_path("qwen3_moe_tiny"), whole, GgufWeightType::Q8_0);
    const std::vector<std::string> shards = mst::test::split_gguf(whole, dir + "/tiny", 3);
    ASSERT_EQ(shards.size(), 3u);
    EXPECT_EQ(fs::path(shards[0]).filename(), "tiny-00001-of-00003.gguf");
    EXPECT_EQ(mst::Checkpoint::open(shards[0])->files().size(), 3u);

    const std::vector<int32_t> ids = {1, 17, 300, 5, 42, 9};
    EXPECT_EQ(prompt_logits(shards[0], ids), prompt_logits(whole, ids));

    mst::test::expect_error([&] { mst::Checkpoint::open(shards[1]); }, MST_ERR_INVALID_ARGUMENT,
                            {"shard 2 of 3", "pass the first one", "tiny-00001-of-00003.gguf"});
    // Shard 3 in shard 2's place: its split.no says so.
    fs::copy_file(shards[1], dir + "/shard2.keep");
    fs::copy_file(shards[2], shards[1], fs::copy_options::overwrite_existing);
    mst::test::expect_error([&] { mst::Checkpoint::open(shards[0]); }, MST_ERR_BAD_FORMAT,
                            {"tiny-00002-of-00003.gguf", "shard 3 of 3, expected shard 2 of 3"});
    fs::copy_file(dir + "/shard2.keep", shards[1], fs::copy_options::overwrite_existing);
    fs::remove(shards[2]);
    mst::test::expect_error([&] { mst::Checkpoint::open(shards[0]); }, MST_ERR_IO, {"tiny-00003-of-00003.gguf"});
    fs::remove_all(dir);
}

// Each new architecture names a missing required key, a key of the wrong type, and what
// it refuses (a softmax-routed deepseek2, i.e. DeepSeek-V2).
TEST(GgufArchMetadata, MissingMistypedAndRefusedKeysAreNamed) {
    const std::string dir = mst::test::make_temp_dir("gguf_arch_keys");
    struct Case {
        std::string name;
        std::function<void(const std::string &)> write;
        std::string required;
    };
    const std::vector<Case> cases = {
        {"deepseek2",
         [](const std::string &path) {
             mst::test::write_deepseek2_gguf(mst::test::data_path("deepseek_v3_tiny"), path, GgufWeightType::F32, true);
         },
         "deepseek2.attention.kv_lora_rank"},
        {"gpt-oss",
         [](const std::string &path) {
             mst::test::write_gpt_oss_gguf(mst::test::data_path("gpt_oss_tiny"), path, GgufWeightType::F32);
         },
         "gpt-oss.attention.sliding_window"},
        {"qwen35moe",
         [](const std::string &path) {
             mst::test::write_qwen_hybrid_gguf(mst::test::data_path("qwen3_5_moe_tiny"), path, GgufWeightType::F32);
         },
         "qwen35moe.ssm.state_size"},
        {"qwen3next", [](const std::string &path) {
             mst::test::write_qwen_hybrid_gguf(mst::test::data_path("qwen3_next_tiny"), path, GgufWeightType::F32);
         },
         "qwen3next.ssm.group_count"}};
    const auto load = [](const std::string &path) {
        const auto checkpoint = mst::Checkpoint::open(path);
        mst::read_model_config(*checkpoint);
    };
    for (const Case &c : cases) {
        const std::string whole = dir + "/" + c.name + ".gguf", broken = dir + "/" + c.name + "_broken.gguf";
        c.write(whole);
        EXPECT_NO_THROW(load(whole)) << c.name;
        mst::test::rewrite_gguf(whole, broken, [](GgufBuilder &) {}, [&](const std::string &key) { return key != c.required; });
        mst::test::expect_error([&] { load(broken); }, MST_ERR_BAD_FORMAT, {"lacks '" + c.required + "'"});
        mst::test::rewrite_gguf(
            whole, broken, [&](GgufBuilder &b) { b.add_string(c.required, "many"); },
            [&](const std::string &key) { return key != c.required; });
        mst::test::expect_error([&] { load(broken); }, MST_ERR_BAD_FORMAT, {"'" + c.required + "' is STRING"});
    }
    mst::test::rewrite_gguf(
        dir + "/deepseek2.gguf", dir + "/softmax.gguf", [](GgufBuilder &b) { b.add_u32("deepseek2.expert_gating_func", 1); },
        [](const std::string &key) { return key != "deepseek2.expert_gating_func"; });
    mst::test::expect_error([&] { load(dir + "/softmax.gguf"); }, MST_ERR_UNSUPPORTED,
                            {"expert_gating_func is 1", "softmax", "sigmoid"});
    fs::remove_all(dir);
}

// `moestream convert model.gguf out.mst`: the packed file computes what the GGUF file
// computes, bit for bit with the experts kept as stored (derived and joined tensors
// included), and carries its tokenizer and chat template; q8 experts are requantized.
TEST(GgufConvert, PackedFileComputesWhatTheGgufComputes) {
    const std::string dir = mst::test::make_temp_dir("gguf_convert");
    const std::vector<int32_t> ids = {1, 17, 300, 5, 42, 9};
    struct Source {
        std::string name;
        std::function<void(const std::string &)> write;
    };
    const std::vector<Source> sources = {
        {"qwen3moe_q8_0",
         [](const std::string &path) {
             mst::test::write_qwen3moe_gguf(mst::test::data_path("qwen3_moe_tiny"), path, GgufWeightType::Q8_0);
         }},
        {"deepseek2_split_kv_b_q8_0",
         [](const std::string &path) {
             mst::test::write_deepseek2_gguf(mst::test::data_path("deepseek_v3_tiny"), path, GgufWeightType::Q8_0,
                                             true);
         }},
        {"qwen35moe_bf16", [](const std::string &path) {
             mst::test::write_qwen_hybrid_gguf(mst::test::data_path("qwen3_5_moe_tiny"), path, GgufWeightType::BF16);
         }}};
    for (const Source &source : sources) {
        const std::string gguf = dir + "/" + source.name + ".gguf", packed = dir + "/" + source.name + ".mst";
        source.write(gguf);
        mst_convert_params params;
        mst_convert_default_params(&params);
        params.experts = "bf16";  // kept as stored
        mst_convert_report report{};
        report.struct_size = sizeof report;
        ASSERT_EQ(mst_convert(gguf.c_str(), packed.c_str(), &params, &report), MST_OK) << mst_last_error();
        EXPECT_GT(report.expert_blobs, 0u);
        EXPECT_EQ(report.quantized_tensors, 0u) << source.name;
        EXPECT_EQ(prompt_logits(packed, ids), prompt_logits(gguf, ids)) << source.name;

        mst_model_params p = mst::model_params();
        p.backend = "cpu";
        const mst::ModelHandle from_gguf(gguf, p), from_packed(packed, p);
        EXPECT_EQ(from_packed.tokenize("Hello, world! <|im_end|>"), from_gguf.tokenize("Hello, world! <|im_end|>"));
        EXPECT_STREQ(from_packed.info().architecture, from_gguf.info().architecture);

        const std::string q8 = dir + "/" + source.name + "_q8.mst";
        params.experts = "q8";
        ASSERT_EQ(mst_convert(gguf.c_str(), q8.c_str(), &params, &report), MST_OK) << mst_last_error();
        EXPECT_EQ(prompt_logits(q8, ids).size(), prompt_logits(gguf, ids).size());
    }
    fs::remove_all(dir);
}

// `convert FILE.gguf OUT.mst --experts q4k` requantizes a GGUF's experts to a K-quant as it
// does a checkpoint directory's (issue 15: experts below 4 bits "from any source"): from a
// BF16 GGUF of the same weights it writes the same Q4_K blocks, so the two packed files'
// logits agree (the GGUF keeps its router and norms F32, the directory BF16: float products
// of the same values); and a Q8_0 GGUF requantizes too, its experts then Q2_K.
TEST(GgufConvert, RequantizesItsExpertsToKQuants) {
    const std::string dir = mst::test::make_temp_dir("gguf_kquant_convert");
    const std::string src = mst::test::data_path("qwen3_moe_trained");
    const std::vector<int32_t> ids = {1, 17, 300, 5, 42, 9};
    const auto convert = [&](const std::string &from, const std::string &to, const char *experts) {
        mst_convert_params params;
        mst_convert_default_params(&params);
        params.experts = experts;
        params.n_threads = 2;
        ASSERT_EQ(mst_convert(from.c_str(), to.c_str(), &params, nullptr), MST_OK) << mst_last_error();
        const auto ckpt = mst::Checkpoint::open(to);
        ASSERT_NE(ckpt->packed(), nullptr);
        const mst::DType want = std::string(experts) == "q4k" ? mst::DType::GGML_Q4_K : mst::DType::GGML_Q2_K;
        EXPECT_EQ(ckpt->packed()->experts.at(2).at(5).parts.at(1).dtype, want) << from;
    };
    const std::string bf16 = dir + "/bf16.gguf";
    mst::test::write_qwen3moe_gguf(src, bf16, GgufWeightType::BF16);
    convert(bf16, dir + "/from_gguf.mst", "q4k");
    convert(src, dir + "/from_dir.mst", "q4k");
    const std::vector<float> from_gguf = prompt_logits(dir + "/from_gguf.mst", ids);
    const std::vector<float> from_dir = prompt_logits(dir + "/from_dir.mst", ids);
    ASSERT_EQ(from_gguf.size(), from_dir.size());
    EXPECT_LT(mst::test::relative_error(from_gguf.data(), from_dir.data(), int64_t(from_dir.size())), 1e-5);

    const std::string q8 = dir + "/q8_0.gguf";
    mst::test::write_qwen3moe_gguf(src, q8, GgufWeightType::Q8_0);
    convert(q8, dir + "/q2k.mst", "q2k");
    const std::vector<float> q2k = prompt_logits(dir + "/q2k.mst", ids);
    EXPECT_EQ(q2k.size(), from_dir.size());
    for (float v : q2k) ASSERT_TRUE(std::isfinite(v));
    fs::remove_all(dir);
}

// A GGUF's tokenizer.chat_template is the model's chat template, and a packed file made
// from it keeps it.
TEST(GgufConvert, ChatTemplateComesFromTheMetadataAndIsCarriedOver) {
    const std::string dir = mst::test::make_temp_dir("gguf_template");
    const std::string whole = dir + "/tiny.gguf";
    mst::test::write_qwen3moe_gguf(mst::test::data_path("qwen3_moe_tiny"), whole, GgufWeightType::BF16);
    // The same file with a template added to its metadata.
    const std::string with_template = dir + "/templated.gguf";
    mst::test::rewrite_gguf(whole, with_template, [](GgufBuilder &b) {
        b.add_string("tokenizer.chat_template", "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}");
    });
    const std::string packed = dir + "/templated.mst";
    mst_convert_params params;
    mst_convert_default_params(&params);
    ASSERT_EQ(mst_convert(with_template.c_str(), packed.c_str(), &params, nullptr), MST_OK) << mst_last_error();
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    for (const std::string &path : {with_template, packed}) {
        const mst::ModelHandle model(path, p);
        char text[256];
        size_t n = 0;
        ASSERT_EQ(mst_model_chat_template(model.get(), nullptr, text, sizeof text, &n), MST_OK) << mst_last_error();
        EXPECT_EQ(std::string(text, n), "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}") << path;
    }
    fs::remove_all(dir);
}

}  // namespace
