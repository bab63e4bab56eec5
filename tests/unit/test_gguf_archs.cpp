// GGUF files of deepseek2, gpt-oss, qwen35moe and qwen3next, written from the reference
// checkpoints as llama.cpp's converter lays them out (tests/support/gguf_model_writer),
// open as checkpoints that hold every tensor the model reads under its Hugging Face name,
// with the shape and values the checkpoint has: the converter's splits, transposes,
// reorders and value changes undone. Metadata errors of each architecture are named.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <string>

#include "expect_error.h"
#include "format/checkpoint.h"
#include "gguf_model_writer.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;
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

}  // namespace
