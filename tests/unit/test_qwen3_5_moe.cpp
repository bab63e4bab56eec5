// The hybrid Qwen3.5 / Qwen3-Next model beyond its logits (those are in
// tests/golden/test_golden_qwen3_5_moe.cpp): the linear-attention state survives a
// forward call that fails midway, cannot be continued from a wrong position, the sizes
// count the text model only, and bad configs and checkpoints are refused by name.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "file_bytes.h"
#include "core/error.h"
#include "expect_error.h"
#include "format/checkpoint.h"
#include "golden.h"
#include "model/loaded_model.h"
#include "model/resident_weights.h"
#include "moestream.hpp"
#include "test_paths.h"

namespace mst {
namespace {

using test::read_file_bytes;

namespace fs = std::filesystem;

// A scratch copy of a dataset directory, removed at the end of the test.
class DatasetCopy {
public:
    explicit DatasetCopy(const std::string &name) : dir_(test::make_temp_dir("mst_qwen35_")) {
        for (const auto &entry : fs::directory_iterator(test::data_path(name)))
            fs::copy_file(entry.path(), fs::path(dir_) / entry.path().filename());
    }
    ~DatasetCopy() { fs::remove_all(dir_); }
    const std::string &dir() const { return dir_; }
    std::string path(const std::string &file) const { return (fs::path(dir_) / file).string(); }

    nlohmann::json config() const {
        std::ifstream in(path("config.json"));
        return nlohmann::json::parse(in);
    }
    void set_config(const nlohmann::json &config) const { std::ofstream(path("config.json")) << config.dump(2); }

private:
    std::string dir_;
};

// Rewrites the file in place (same inode), so that descriptors the model holds see it.
void write_bytes_in_place(const std::string &path, const std::string &bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
}

std::unique_ptr<LoadedModel> load(const std::string &dir, uint64_t cache_bytes = 1ull << 30) {
    LoadOptions options;
    options.backend = "cpu";
    options.expert_cache_bytes = cache_bytes;
    return load_model(dir, options);
}

TEST(Qwen35Moe, StateSurvivesAForwardThatFailsMidway) {
    // The expert reads of a call fail after the first linear-attention layer has written its
    // new state; the call is then retried from the same position with the file restored.
    const DatasetCopy data("qwen3_5_moe_tiny");
    const test::Golden golden = test::load_golden(data.path("golden.safetensors"));
    const auto model = load(data.dir(), 0);  // no cache: every expert is read from the file
    const auto state = model->model->create_state(64);
    const std::span<const int32_t> prompt(golden.input_ids);
    const size_t first = 10, rest = prompt.size() - first;
    const int64_t V = golden.vocab;
    ForwardOptions fo;
    fo.experts_per_token = model->experts_per_token;
    fo.all_logits = true;
    std::vector<float> logits(prompt.size() * size_t(V));
    ExpertIoStats io;
    model->model->forward(*state, 0, prompt.first(first), fo, logits.data(), io);

    const std::string weights = data.path("model.safetensors");
    const std::string original = read_file_bytes(weights);
    uint64_t header_len = 0;
    for (int i = 0; i < 8; ++i) header_len |= uint64_t(uint8_t(original[size_t(i)])) << (8 * i);
    write_bytes_in_place(weights, original.substr(0, size_t(8 + header_len)));  // every tensor's bytes gone
    EXPECT_THROW(model->model->forward(*state, int32_t(first), prompt.subspan(first), fo, logits.data(), io), Error);
    write_bytes_in_place(weights, original);

    model->model->forward(*state, int32_t(first), prompt.subspan(first), fo, logits.data(), io);
    const float *want = golden.logits().data() + first * size_t(V);
    EXPECT_LT(test::relative_error(logits.data(), want, int64_t(rest) * V), 1e-4);
}

TEST(Qwen35Moe, RefusesToContinueFromAnotherPosition) {
    const auto model = load(test::data_path("qwen3_next_tiny"));
    const test::Golden golden = test::load_golden(test::data_path("qwen3_next_tiny/golden.safetensors"));
    const auto state = model->model->create_state(64);
    const std::span<const int32_t> prompt(golden.input_ids);
    ForwardOptions fo;
    fo.experts_per_token = model->experts_per_token;
    std::vector<float> logits(size_t(golden.vocab));
    ExpertIoStats io;
    model->model->forward(*state, 0, prompt.first(8), fo, logits.data(), io);
    test::expect_error([&] { model->model->forward(*state, 5, prompt.subspan(5, 3), fo, logits.data(), io); },
                       MST_ERR_INVALID_ARGUMENT, {"holds 8 tokens", "position 5"});
    // Refused before anything changed: the session continues where it was.
    model->model->forward(*state, 8, prompt.subspan(8), fo, logits.data(), io);
    const float *want = golden.logits().data() + (prompt.size() - 1) * size_t(golden.vocab);
    EXPECT_LT(test::relative_error(logits.data(), want, golden.vocab), 1e-4);
}

TEST(Qwen35Moe, SizesCountTheTextModelOnly) {
    // The wrapper layout holds the same text model (experts fused) plus vision and MTP
    // tensors that are not read: every size must be the plain layout's.
    const mst::ModelHandle plain(test::data_path("qwen3_5_moe_tiny"));
    const mst::ModelHandle wrapped(test::data_path("qwen3_5_moe_wrapped"));
    const mst_model_info a = plain.info(), b = wrapped.info();

    const auto checkpoint = Checkpoint::open(test::data_path("qwen3_5_moe_tiny"));
    uint64_t all_params = 0;
    for (const TensorInfo &t : checkpoint->tensors()) all_params += uint64_t(t.numel());
    const uint64_t expert_each = 3 * 16 * 64 * 2;  // gate, up, down of 16 x 64, bf16
    EXPECT_EQ(a.n_params_total, all_params);
    EXPECT_EQ(a.expert_bytes_each, expert_each);
    EXPECT_EQ(a.expert_bytes_total, 4 * 8 * expert_each);
    EXPECT_EQ(a.n_moe_layers, 4);
    EXPECT_EQ(a.n_params_active, all_params - 4 * 8 * (expert_each / 2) + 4 * 4 * (expert_each / 2));
    EXPECT_EQ(std::string(b.architecture), "qwen3_5_moe_text");
    EXPECT_EQ(b.n_params_total, a.n_params_total);
    EXPECT_EQ(b.n_params_active, a.n_params_active);
    EXPECT_EQ(b.resident_bytes, a.resident_bytes);
    EXPECT_EQ(b.expert_bytes_total, a.expert_bytes_total);
}

TEST(Qwen35Moe, RefusesAnUnknownLayerType) {
    const DatasetCopy data("qwen3_5_moe_tiny");
    nlohmann::json config = data.config();
    config["layer_types"][1] = "mamba";
    data.set_config(config);
    test::expect_error([&] { load(data.dir()); }, MST_ERR_UNSUPPORTED, {"layer 1", "mamba"});
}

TEST(Qwen35Moe, RefusesValueHeadsNotAMultipleOfKeyHeads) {
    const DatasetCopy data("qwen3_next_tiny");
    nlohmann::json config = data.config();
    config["linear_num_value_heads"] = 3;
    data.set_config(config);
    test::expect_error([&] { load(data.dir()); }, MST_ERR_BAD_FORMAT,
                       {"linear_num_value_heads 3", "linear_num_key_heads 2"});
}

TEST(Qwen35Moe, NamesAMissingFusedProjection) {
    // Qwen3.5 tensors under a Qwen3-Next config: the fused projection is missing.
    const DatasetCopy data("qwen3_5_moe_tiny");
    nlohmann::json config = data.config();
    config["model_type"] = "qwen3_next";
    data.set_config(config);
    test::expect_error([&] { load(data.dir()); }, MST_ERR_BAD_FORMAT,
                       {"model.layers.0.linear_attn.in_proj_qkvz.weight"});
}

TEST(Qwen35Moe, FallsBackOnTheReferenceDefaults) {
    // Published Qwen3-Next configs have no layer_types (full_attention_interval, default 4,
    // says which layers are full attention); partial_rotary_factor defaults to 0.25 and
    // norm_topk_prob to true there. This model's values are those defaults, so without the
    // fields the logits are unchanged.
    const DatasetCopy data("qwen3_next_tiny");
    nlohmann::json config = data.config();
    config.erase("layer_types");
    config.erase("partial_rotary_factor");
    config["rope_parameters"].erase("partial_rotary_factor");
    config.erase("norm_topk_prob");
    data.set_config(config);
    const test::Golden golden = test::load_golden(data.path("golden.safetensors"));
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    const mst::ModelHandle model(data.dir(), p);
    mst::SessionHandle session(model);
    session.eval(golden.input_ids);
    const std::vector<float> got = session.logits();
    const float *want = golden.logits().data() + (golden.input_ids.size() - 1) * size_t(golden.vocab);
    EXPECT_LT(test::relative_error(got.data(), want, golden.vocab), 1e-4);

    config["full_attention_interval"] = 2;  // layer 1 would be full attention: its tensors are absent
    data.set_config(config);
    test::expect_error([&] { load(data.dir()); }, MST_ERR_BAD_FORMAT, {"model.layers.1.self_attn"});
}

TEST(Qwen35Moe, LoadRowsReordersRowsAndChecksTheOrder) {
    // How Qwen3-Next's fused projections are brought to the separate layout.
    const auto checkpoint = Checkpoint::open(test::data_path("qwen3_next_tiny"));
    const std::string name = "model.layers.0.linear_attn.in_proj_ba.weight";
    const TensorInfo &info = checkpoint->require(name, {8, 64});
    std::vector<uint8_t> stored(info.nbytes);
    checkpoint->read(info, stored.data());
    ResidentWeights weights(*checkpoint);
    const std::vector<int64_t> order = {3, 0, 7, 1, 6, 2, 5, 4};
    const WeightView view = weights.load_rows(name, {8, 64}, order);
    ASSERT_EQ(view.rows, 8);
    const size_t row_bytes = 64 * 2;
    const auto *rows = static_cast<const uint8_t *>(view.data);
    for (size_t i = 0; i < order.size(); ++i)
        EXPECT_TRUE(std::equal(rows + i * row_bytes, rows + (i + 1) * row_bytes,
                               stored.begin() + std::ptrdiff_t(size_t(order[i]) * row_bytes)))
            << "row " << i;
    test::expect_error([&] { weights.load_rows(name, {8, 64}, {0, 1, 2, 3, 4, 5, 6, 6}); }, MST_ERR_INVALID_ARGUMENT,
                       {name, "permutation"});
    test::expect_error([&] { weights.load_rows(name, {8, 64}, {0, 1, 2}); }, MST_ERR_INVALID_ARGUMENT,
                       {name, "permutation"});
}

}  // namespace
}  // namespace mst
