// The other on-disk forms of the Mixtral and gpt-oss checkpoints, made by rewriting the
// project's reference datasets: Mixtral with its experts fused under `mlp` as
// transformers 5 holds them must give the logits of the published per-expert form, and
// gpt-oss configs the reference would not run are refused naming what is wrong.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "format/checkpoint.h"
#include "golden.h"
#include "moestream.hpp"
#include "prompt_logits.h"
#include "safetensors_writer.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;

// Copies `src` (a checkpoint directory) to `dst`, passing model.safetensors through
// `rewrite` (which adds tensors to the writer, given the source) and config.json through
// `edit`.
void copy_checkpoint(const std::string &src, const fs::path &dst,
                     const std::function<void(const mst::Checkpoint &, mst::test::SafetensorsWriter &)> &rewrite,
                     const std::function<void(nlohmann::json &)> &edit) {
    fs::create_directories(dst);
    const auto checkpoint = mst::Checkpoint::open(src);
    mst::test::SafetensorsWriter writer;
    rewrite(*checkpoint, writer);
    writer.write((dst / "model.safetensors").string());
    nlohmann::json config = nlohmann::json::parse(std::ifstream(fs::path(src) / "config.json"));
    edit(config);
    std::ofstream(dst / "config.json") << config.dump(2);
    for (const char *f : {"tokenizer.json", "tokenizer_config.json"})
        fs::copy_file(fs::path(src) / f, dst / f, fs::copy_options::overwrite_existing);
}

std::vector<uint8_t> bytes_of(const mst::Checkpoint &ck, const mst::TensorInfo &t) {
    std::vector<uint8_t> b(t.nbytes);
    ck.read(t, b.data());
    return b;
}

void copy_tensor(const mst::Checkpoint &ck, const mst::TensorInfo &t, const std::string &name,
                 mst::test::SafetensorsWriter &w) {
    const std::vector<uint8_t> b = bytes_of(ck, t);
    w.add_raw(name, std::string(mst::dtype_name(t.dtype)), t.shape, b.data(), b.size());
}

std::vector<float> prefill_logits(const std::string &dir) {
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    return mst::test::prompt_logits(
        mst::ModelHandle(dir, p), mst::test::load_golden(mst::test::data_path("mixtral_tiny/golden.safetensors")).input_ids);
}

class CheckpointForms : public ::testing::Test {
protected:
    void SetUp() override { root_ = mst::test::make_temp_dir("mst_checkpoint_forms"); }
    void TearDown() override { fs::remove_all(root_); }
    fs::path root_;
};

TEST_F(CheckpointForms, MixtralFusedUnderMlpMatchesPerExpertNames) {
    const std::string src = mst::test::data_path("mixtral_tiny");
    const fs::path dst = root_ / "fused";
    copy_checkpoint(
        src, dst,
        [](const mst::Checkpoint &ck, mst::test::SafetensorsWriter &w) {
            const int64_t n_layers = 2, n_experts = 8;
            for (const mst::TensorInfo &t : ck.tensors()) {
                if (t.name.find(".block_sparse_moe.experts.") != std::string::npos) continue;
                std::string name = t.name;
                const size_t at = name.find(".block_sparse_moe.");
                if (at != std::string::npos) name.replace(at, 18, ".mlp.");
                copy_tensor(ck, t, name, w);
            }
            // gate_up_proj [E][2I][H]: w1 rows then w3 rows; down_proj [E][H][I]: w2.
            for (int64_t l = 0; l < n_layers; ++l) {
                std::vector<uint8_t> gate_up, down;
                std::vector<int64_t> w1_shape, w2_shape;
                for (int64_t e = 0; e < n_experts; ++e) {
                    const std::string p = fmt::format("model.layers.{}.block_sparse_moe.experts.{}.", l, e);
                    for (const char *part : {"w1", "w3"}) {
                        const std::vector<uint8_t> b = bytes_of(ck, ck.require(p + part + ".weight"));
                        gate_up.insert(gate_up.end(), b.begin(), b.end());
                    }
                    const std::vector<uint8_t> b = bytes_of(ck, ck.require(p + "w2.weight"));
                    down.insert(down.end(), b.begin(), b.end());
                    w1_shape = ck.require(p + "w1.weight").shape;
                    w2_shape = ck.require(p + "w2.weight").shape;
                }
                const std::string q = fmt::format("model.layers.{}.mlp.experts.", l);
                w.add_raw(q + "gate_up_proj", "BF16", {n_experts, 2 * w1_shape[0], w1_shape[1]}, gate_up.data(),
                          gate_up.size());
                w.add_raw(q + "down_proj", "BF16", {n_experts, w2_shape[0], w2_shape[1]}, down.data(), down.size());
            }
        },
        [](nlohmann::json &) {});
    const std::vector<float> want = prefill_logits(src), got = prefill_logits(dst.string());
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(got, want);
}

// gpt_oss_tiny with its config edited by `edit`: loading must fail with `code` and a
// message holding `needle`.
void expect_gpt_oss_config_refused(const fs::path &dst, const std::function<void(nlohmann::json &)> &edit,
                                   mst_status code, const std::string &needle) {
    copy_checkpoint(
        mst::test::data_path("gpt_oss_tiny"), dst,
        [](const mst::Checkpoint &ck, mst::test::SafetensorsWriter &w) {
            for (const mst::TensorInfo &t : ck.tensors()) copy_tensor(ck, t, t.name, w);
        },
        edit);
    mst_model_params p = mst::model_params();
    mst_model *model = nullptr;
    EXPECT_EQ(mst_model_load(dst.string().c_str(), &p, &model), code);
    EXPECT_EQ(model, nullptr);
    EXPECT_NE(std::string(mst_last_error()).find(needle), std::string::npos) << mst_last_error();
}

TEST_F(CheckpointForms, GptOssUnknownLayerTypeIsRefused) {
    expect_gpt_oss_config_refused(
        root_ / "layer_type", [](nlohmann::json &c) { c["layer_types"][1] = "chunked_attention"; },
        MST_ERR_UNSUPPORTED, "chunked_attention");
}

TEST_F(CheckpointForms, GptOssSlidingLayerWithoutWindowIsRefused) {
    expect_gpt_oss_config_refused(
        root_ / "no_window", [](nlohmann::json &c) { c["sliding_window"] = nullptr; }, MST_ERR_BAD_FORMAT,
        "sliding_window");
}

TEST_F(CheckpointForms, GptOssBadSwigluLimitIsRefused) {
    expect_gpt_oss_config_refused(
        root_ / "limit", [](nlohmann::json &c) { c["swiglu_limit"] = "seven"; }, MST_ERR_BAD_FORMAT, "swiglu_limit");
}

}  // namespace
