// GGUF files of the architectures beyond qwen3moe and llama, written from the reference
// checkpoints by tests/support/gguf_model_writer as llama.cpp's converter lays them out,
// load through mst_model_load and compute the transformers reference logits (and greedy
// ids) of each checkpoint's golden.safetensors with experts streamed through a zero-byte
// cache:
//   deepseek2 from deepseek_v3_tiny and kimi_k2_tiny, kv_b_proj both as the split
//   attn_k_b / attn_v_b of newer conversions and as the single attn_kv_b of older ones;
//   gpt-oss from gpt_oss_tiny in F16, BF16 and Q8_0 (its experts split into gate and up
//   with biases, attention sinks, the sliding-window pattern, YaRN). MXFP4 experts, the
//   published gpt-oss form, need ggml's MXFP4 type, which this loader does not map yet;
//   qwen35moe and qwen3next from qwen3_5_moe_tiny and qwen3_next_tiny (Gated DeltaNet
//   tensors with llama.cpp's changes undone, tiled value heads, the shared expert's gate).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "golden.h"
#include "gguf_logits.h"
#include "gguf_model_writer.h"
#include "golden_logits.h"
#include "moestream.hpp"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;
using mst::test::GgufWeightType;

// The golden suite's float bound (golden_logits.h); Q8_0 of every matrix whose rows are
// whole blocks (the rest F16, as llama.cpp falls back): the packed format's bound for q8
// dense weights (test_golden_gguf.cpp).
constexpr double kFloatTolerance = golden_suite::kLogitTolerance, kQ8Tolerance = 0.15;

// Loads the GGUF at `path` on the CPU with a zero-byte expert cache and checks the
// reference logits (and, for float weights, the greedy ids) of `golden`.
void expect_reference(const std::string &path, const mst::test::Golden &golden, const char *architecture, bool q8,
                      const std::string &what) {
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    p.expert_cache_bytes = 0;
    const mst::ModelHandle model(path, p);
    EXPECT_STREQ(model.info().architecture, architecture);
    const std::vector<float> got = mst::test::prompt_logits(model, golden.input_ids);
    const std::vector<float> &want = golden.logits();
    ASSERT_EQ(got.size(), want.size());
    const double err = mst::test::relative_error(got.data(), want.data(), int64_t(want.size()));
    std::printf("%s: relative error %.3g\n", what.c_str(), err);
    EXPECT_LT(err, q8 ? kQ8Tolerance : kFloatTolerance) << what;
    if (!q8) {
        EXPECT_EQ(mst::test::gguf_greedy_ids(model, golden.input_ids, golden.greedy_ids.size()), golden.greedy_ids)
            << what;
    }
}

struct DeepseekCase {
    std::string checkpoint;  // under tests/data
    GgufWeightType type;
    std::string type_name;
    bool split_kv_b;
};

std::string label(const DeepseekCase &c) {
    return c.checkpoint + "_" + c.type_name + (c.split_kv_b ? "_split_kv_b" : "_kv_b");
}
void PrintTo(const DeepseekCase &c, std::ostream *os) { *os << label(c); }

class GoldenGgufDeepseek2 : public ::testing::TestWithParam<DeepseekCase> {};

TEST_P(GoldenGgufDeepseek2, LogitsAndGreedyIdsMatchReference) {
    const DeepseekCase &c = GetParam();
    const std::string data = mst::test::data_path(c.checkpoint);
    const mst::test::Golden golden = mst::test::load_golden(data + "/golden.safetensors");
    const std::string dir = mst::test::make_temp_dir("gguf_deepseek2");
    const std::string path = dir + "/" + label(c) + ".gguf";
    mst::test::write_deepseek2_gguf(data, path, c.type, c.split_kv_b);
    expect_reference(path, golden, "deepseek_v3", c.type == GgufWeightType::Q8_0, label(c));
    fs::remove_all(dir);
}

std::vector<DeepseekCase> deepseek_cases() {
    std::vector<DeepseekCase> out;
    for (const char *checkpoint : {"deepseek_v3_tiny", "kimi_k2_tiny"})
        for (const auto &[type, name] : {std::pair{GgufWeightType::F32, "F32"}, {GgufWeightType::BF16, "BF16"},
                                         {GgufWeightType::Q8_0, "Q8_0"}})
            for (const bool split : {true, false}) out.push_back({checkpoint, type, name, split});
    return out;
}

INSTANTIATE_TEST_SUITE_P(Tiny, GoldenGgufDeepseek2, ::testing::ValuesIn(deepseek_cases()),
                         [](const auto &param_info) { return label(param_info.param); });

class GoldenGgufGptOss : public ::testing::TestWithParam<std::pair<GgufWeightType, std::string>> {};

TEST_P(GoldenGgufGptOss, LogitsAndGreedyIdsMatchReference) {
    const std::string data = mst::test::data_path("gpt_oss_tiny");
    const std::string dir = mst::test::make_temp_dir("gguf_gpt_oss");
    const std::string path = dir + "/gpt_oss_" + GetParam().second + ".gguf";
    mst::test::write_gpt_oss_gguf(data, path, GetParam().first);
    expect_reference(path, mst::test::load_golden(data + "/golden.safetensors"), "gpt_oss",
                     GetParam().first == GgufWeightType::Q8_0, "gpt_oss " + GetParam().second);
    fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Tiny, GoldenGgufGptOss,
                         ::testing::Values(std::pair{GgufWeightType::F16, std::string("F16")},
                                           std::pair{GgufWeightType::BF16, std::string("BF16")},
                                           std::pair{GgufWeightType::Q8_0, std::string("Q8_0")}),
                         [](const auto &param_info) { return param_info.param.second; });

struct HybridCase {
    std::string checkpoint, architecture;
    GgufWeightType type;
    std::string type_name;
};

void PrintTo(const HybridCase &c, std::ostream *os) { *os << c.checkpoint << "_" << c.type_name; }

class GoldenGgufQwenHybrid : public ::testing::TestWithParam<HybridCase> {};

TEST_P(GoldenGgufQwenHybrid, LogitsAndGreedyIdsMatchReference) {
    const HybridCase &c = GetParam();
    const std::string data = mst::test::data_path(c.checkpoint);
    const std::string dir = mst::test::make_temp_dir("gguf_qwen_hybrid");
    const std::string path = dir + "/" + c.checkpoint + "_" + c.type_name + ".gguf";
    mst::test::write_qwen_hybrid_gguf(data, path, c.type);
    expect_reference(path, mst::test::load_golden(data + "/golden.safetensors"), c.architecture.c_str(),
                     c.type == GgufWeightType::Q8_0, c.checkpoint + " " + c.type_name);
    fs::remove_all(dir);
}

std::vector<HybridCase> hybrid_cases() {
    std::vector<HybridCase> out;
    for (const auto &[checkpoint, architecture] :
         {std::pair{"qwen3_5_moe_tiny", "qwen3_5_moe_text"}, {"qwen3_next_tiny", "qwen3_next"}})
        for (const auto &[type, name] : {std::pair{GgufWeightType::F32, "F32"}, {GgufWeightType::BF16, "BF16"},
                                         {GgufWeightType::Q8_0, "Q8_0"}})
            out.push_back({checkpoint, architecture, type, name});
    return out;
}

INSTANTIATE_TEST_SUITE_P(Tiny, GoldenGgufQwenHybrid, ::testing::ValuesIn(hybrid_cases()),
                         [](const auto &param_info) { return param_info.param.checkpoint + "_" + param_info.param.type_name; });

}  // namespace
