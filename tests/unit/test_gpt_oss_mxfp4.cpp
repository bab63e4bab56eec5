// gpt-oss with MXFP4 experts, as the published checkpoints store them (`*_blocks`
// [E][rows][cols/32][16] and `*_scales` [E][rows][cols/32] U8, outputs along rows),
// against the same model with those experts written out as bf16 in transformers' float
// layout (gate_up_proj [E][H][2I], down_proj [E][I][H], inputs along rows). Every
// MXFP4 value is exact in bf16, so both checkpoints hold the same function: the loader,
// the MXFP4 kernel and the float path must agree to float32 summation-order error. The
// float path itself is checked against Hugging Face in test_golden_gpt_oss.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
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
using mst::test::SafetensorsWriter;

// Two layers (one sliding, one full), hidden and expert sizes of a few MXFP4 blocks.
constexpr int64_t kHidden = 64, kInter = 96, kExperts = 4, kTopK = 2, kLayers = 2;
constexpr int64_t kHeads = 4, kKvHeads = 2, kHeadDim = 16, kVocab = 1024;

// The float32 value of e2m1 nibble n times 2^(scale - 127), from the format definition.
float mxfp4_value(uint8_t nibble, uint8_t scale) {
    const int sign = nibble >> 3, exponent = (nibble >> 1) & 3, mantissa = nibble & 1;
    const double magnitude = exponent == 0 ? 0.5 * mantissa : (1.0 + 0.5 * mantissa) * std::ldexp(1.0, exponent - 1);
    return float((sign ? -magnitude : magnitude) * std::ldexp(1.0, int(scale) - 127));
}

// One layer's matrix [E][rows][cols] in MXFP4, and the same values transposed to
// [E][cols][rows] as floats (the x @ W layout).
struct ExpertMatrix {
    std::vector<uint8_t> blocks, scales;
    std::vector<float> transposed;
};

ExpertMatrix random_expert_matrix(int64_t rows, int64_t cols, std::mt19937 &rng) {
    std::uniform_int_distribution<int> byte(0, 255), scale(122, 125);
    ExpertMatrix m;
    m.blocks.resize(size_t(kExperts * rows * cols / 2));
    m.scales.resize(size_t(kExperts * rows * cols / 32));
    for (uint8_t &b : m.blocks) b = uint8_t(byte(rng));
    for (uint8_t &s : m.scales) s = uint8_t(scale(rng));
    m.transposed.resize(size_t(kExperts * rows * cols));
    for (int64_t e = 0; e < kExperts; ++e)
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) {
                const int64_t i = (e * rows + r) * cols + c;
                const uint8_t b = m.blocks[size_t(i / 2)];
                m.transposed[size_t((e * cols + c) * rows + r)] =
                    mxfp4_value(i % 2 == 0 ? b & 0x0f : b >> 4, m.scales[size_t(i / 32)]);
            }
    return m;
}

std::vector<float> random_values(size_t n, float scale, std::mt19937 &rng) {
    std::uniform_real_distribution<float> dist(-scale, scale);
    std::vector<float> v(n);
    for (float &f : v) f = dist(rng);
    return v;
}

void write_config(const fs::path &dir) {
    const nlohmann::json config = {
        {"architectures", {"GptOssForCausalLM"}}, {"model_type", "gpt_oss"}, {"hidden_size", kHidden},
        {"num_hidden_layers", kLayers}, {"num_attention_heads", kHeads}, {"num_key_value_heads", kKvHeads},
        {"head_dim", kHeadDim}, {"vocab_size", kVocab}, {"intermediate_size", kInter},
        {"num_local_experts", kExperts}, {"num_experts_per_tok", kTopK}, {"attention_bias", true},
        {"rms_norm_eps", 1e-5}, {"sliding_window", 4}, {"layer_types", {"sliding_attention", "full_attention"}},
        {"max_position_embeddings", 4096}, {"tie_word_embeddings", false}, {"swiglu_limit", 7.0},
        {"rope_parameters",
         {{"rope_type", "yarn"}, {"rope_theta", 150000.0}, {"factor", 32.0}, {"beta_fast", 32.0}, {"beta_slow", 1.0},
          {"original_max_position_embeddings", 64}, {"truncate", false}}}};
    std::ofstream(dir / "config.json") << config.dump(2);
    for (const char *f : {"tokenizer.json", "tokenizer_config.json"})
        fs::copy_file(mst::test::data_path(std::string("tokenizer/") + f), dir / f,
                      fs::copy_options::overwrite_existing);
}

// Writes the MXFP4 checkpoint into dirs[0] and its float twin into dirs[1].
void write_pair(const fs::path &mxfp4_dir, const fs::path &float_dir, uint32_t seed) {
    std::mt19937 rng(seed);
    SafetensorsWriter common;
    const float in_scale = 1.0f / std::sqrt(float(kHidden));
    auto add = [&](const std::string &name, std::vector<int64_t> shape, float scale) {
        size_t n = 1;
        for (int64_t d : shape) n *= size_t(d);
        common.add_bf16(name, shape, scale == 0.0f ? std::vector<float>(n, 1.0f) : random_values(n, scale, rng));
    };
    add("model.embed_tokens.weight", {kVocab, kHidden}, 1.0f);
    add("model.norm.weight", {kHidden}, 0.0f);
    add("lm_head.weight", {kVocab, kHidden}, in_scale);
    SafetensorsWriter mxfp4 = common, dense = common;
    for (int64_t l = 0; l < kLayers; ++l) {
        const std::string p = fmt::format("model.layers.{}.", l);
        auto add_layer = [&](const std::string &name, std::vector<int64_t> shape, float scale) {
            size_t n = 1;
            for (int64_t d : shape) n *= size_t(d);
            const std::vector<float> v = scale == 0.0f ? std::vector<float>(n, 1.0f) : random_values(n, scale, rng);
            mxfp4.add_bf16(name, shape, v);
            dense.add_bf16(name, shape, v);
        };
        add_layer(p + "input_layernorm.weight", {kHidden}, 0.0f);
        add_layer(p + "post_attention_layernorm.weight", {kHidden}, 0.0f);
        for (const char *proj : {"q", "k", "v"}) {
            const int64_t out = std::string(proj) == "q" ? kHeads * kHeadDim : kKvHeads * kHeadDim;
            add_layer(p + "self_attn." + proj + "_proj.weight", {out, kHidden}, in_scale);
            add_layer(p + "self_attn." + proj + "_proj.bias", {out}, 0.1f);
        }
        add_layer(p + "self_attn.o_proj.weight", {kHidden, kHeads * kHeadDim}, in_scale);
        add_layer(p + "self_attn.o_proj.bias", {kHidden}, 0.1f);
        add_layer(p + "self_attn.sinks", {kHeads}, 1.0f);
        add_layer(p + "mlp.router.weight", {kExperts, kHidden}, in_scale);
        add_layer(p + "mlp.router.bias", {kExperts}, 0.1f);
        add_layer(p + "mlp.experts.gate_up_proj_bias", {kExperts, 2 * kInter}, 0.1f);
        add_layer(p + "mlp.experts.down_proj_bias", {kExperts, kHidden}, 0.1f);

        const ExpertMatrix gate_up = random_expert_matrix(2 * kInter, kHidden, rng);
        const ExpertMatrix down = random_expert_matrix(kHidden, kInter, rng);
        const std::string q = p + "mlp.experts.";
        mxfp4.add(q + "gate_up_proj_blocks", mst::DType::U8, {kExperts, 2 * kInter, kHidden / 32, 16}, gate_up.blocks);
        mxfp4.add(q + "gate_up_proj_scales", mst::DType::U8, {kExperts, 2 * kInter, kHidden / 32}, gate_up.scales);
        mxfp4.add(q + "down_proj_blocks", mst::DType::U8, {kExperts, kHidden, kInter / 32, 16}, down.blocks);
        mxfp4.add(q + "down_proj_scales", mst::DType::U8, {kExperts, kHidden, kInter / 32}, down.scales);
        dense.add_bf16(q + "gate_up_proj", {kExperts, kHidden, 2 * kInter}, gate_up.transposed);
        dense.add_bf16(q + "down_proj", {kExperts, kInter, kHidden}, down.transposed);
    }
    for (const auto &[dir, writer] : {std::pair{mxfp4_dir, &mxfp4}, std::pair{float_dir, &dense}}) {
        fs::create_directories(dir);
        writer->write((dir / "model.safetensors").string());
        write_config(dir);
    }
}

class GptOssMxfp4 : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        root_ = mst::test::make_temp_dir("mst_gpt_oss_mxfp4");
        write_pair(fs::path(root_) / "mxfp4", fs::path(root_) / "float", 11);
    }
    static void TearDownTestSuite() { fs::remove_all(root_); }

    static mst::ModelHandle load(const std::string &which, uint64_t cache_bytes = 1ull << 30) {
        mst_model_params p = mst::model_params();
        p.backend = "cpu";
        p.expert_cache_bytes = cache_bytes;
        return mst::ModelHandle((fs::path(root_) / which).string(), p);
    }

    static std::vector<float> logits(const mst::ModelHandle &model, const std::vector<int32_t> &ids,
                                     uint32_t n_batch) {
        mst_session_params sp = mst::session_params();
        sp.n_batch = n_batch;
        return mst::test::prompt_logits(model, ids, sp);
    }

    static std::vector<int32_t> prompt() {
        std::vector<int32_t> ids;
        for (int i = 0; i < 12; ++i) ids.push_back(int32_t((i * 37 + 5) % 1000));
        return ids;
    }

    static std::string root_;
};

std::string GptOssMxfp4::root_;

TEST_F(GptOssMxfp4, MatchesTheSameExpertsStoredAsBf16) {
    const mst::ModelHandle mxfp4 = load("mxfp4"), dense = load("float");
    const std::vector<float> want = logits(dense, prompt(), 0);
    for (uint32_t n_batch : {0u, 1u, 5u}) {
        const std::vector<float> got = logits(mxfp4, prompt(), n_batch);
        ASSERT_EQ(got.size(), want.size());
        EXPECT_LT(mst::test::relative_error(got.data(), want.data(), int64_t(want.size())), 1e-5)
            << "n_batch " << n_batch;
    }
}

TEST_F(GptOssMxfp4, StreamsWithZeroCache) {
    const mst::ModelHandle mxfp4 = load("mxfp4", 0), dense = load("float");
    const std::vector<float> got = logits(mxfp4, prompt(), 0), want = logits(dense, prompt(), 0);
    EXPECT_LT(mst::test::relative_error(got.data(), want.data(), int64_t(want.size())), 1e-5);
}

TEST_F(GptOssMxfp4, InfoCountsPackedParametersAndBytes) {
    // The models outlive their infos: the strings in an info are owned by its model.
    const mst::ModelHandle mxfp4 = load("mxfp4"), dense = load("float");
    const mst_model_info q = mxfp4.info(), f = dense.info();
    // The same parameters, whatever their storage.
    EXPECT_EQ(q.n_params_total, f.n_params_total);
    EXPECT_EQ(q.n_params_active, f.n_params_active);
    EXPECT_EQ(q.resident_bytes, f.resident_bytes);
    // One MXFP4 expert: 2I x H and H x I at half a byte plus a scale byte per 32, and the
    // two bf16 biases.
    const uint64_t packed =
        uint64_t(2 * kInter * kHidden + kHidden * kInter) * 17 / 32 + 2 * uint64_t(2 * kInter + kHidden);
    EXPECT_EQ(q.expert_bytes_each, packed);
    EXPECT_EQ(f.expert_bytes_each, uint64_t(2 * kInter * kHidden + kHidden * kInter + 2 * kInter + kHidden) * 2);
    EXPECT_EQ(q.expert_bytes_total, packed * kExperts * kLayers);
    EXPECT_EQ(std::string(q.architecture), "gpt_oss");
}

TEST_F(GptOssMxfp4, BlocksOfTheWrongShapeAreRefusedByName) {
    // A checkpoint whose first layer's gate_up blocks lost a row.
    const fs::path dir = fs::path(root_) / "bad";
    fs::create_directories(dir);
    const auto source = mst::Checkpoint::open((fs::path(root_) / "mxfp4").string());
    SafetensorsWriter writer;
    for (const mst::TensorInfo &t : source->tensors()) {
        std::vector<uint8_t> bytes(t.nbytes);
        source->read(t, bytes.data());
        std::vector<int64_t> shape = t.shape;
        if (t.name == "model.layers.0.mlp.experts.gate_up_proj_blocks") {
            shape[1] -= 1;
            bytes.resize(bytes.size() / size_t(kExperts * 2 * kInter) * size_t(kExperts * (2 * kInter - 1)));
        }
        writer.add_raw(t.name, std::string(mst::dtype_name(t.dtype)), shape, bytes.data(), bytes.size());
    }
    writer.write((dir / "model.safetensors").string());
    write_config(dir);
    mst_model_params p = mst::model_params();
    mst_model *model = nullptr;
    EXPECT_EQ(mst_model_load(dir.string().c_str(), &p, &model), MST_ERR_BAD_FORMAT);
    EXPECT_EQ(model, nullptr);
    EXPECT_NE(std::string(mst_last_error()).find("model.layers.0.mlp.experts.gate_up_proj_blocks"), std::string::npos)
        << mst_last_error();
}

}  // namespace
