// DeepSeek-V3 end to end on small random checkpoints written by the test: the FP8 form
// (E4M3 weights with block scales, resident and streamed) computes the same logits as
// the float32 form of the same values, for per-expert and fused expert tensors and with
// FP8 and bf16 tensors mixed; sizes and KV-cache figures; config and tensor errors. The
// KV figures of the published DeepSeek-V3 and Kimi K2 configs are checked when
// ../shared is present.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "format/model_config.h"
#include "golden.h"
#include "model/deepseek_v3.h"
#include "moestream.hpp"
#include "prompt_logits.h"
#include "synthetic_deepseek.h"
#include "test_paths.h"

namespace {

using mst::test::SyntheticDeepseek;
using S = mst::test::SyntheticDeepseekShape;

// Same values, same dot kernels; only blocking may reorder float32 sums.
constexpr double kSameFunction = 1e-5;

class DeepseekV3Model : public ::testing::Test {
protected:
    void SetUp() override { root_ = mst::test::make_temp_dir("mst_deepseek_"); }
    void TearDown() override { std::filesystem::remove_all(root_); }

    std::string write(const std::string &name, const SyntheticDeepseek &options) {
        const std::string dir = root_ + "/" + name;
        std::filesystem::create_directory(dir);
        mst::test::write_synthetic_deepseek(dir, options);
        return dir;
    }

    static mst::ModelHandle load(const std::string &dir, uint64_t cache_bytes = 64ull << 20) {
        mst_model_params p = mst::model_params();
        p.backend = "cpu";
        p.expert_cache_bytes = cache_bytes;
        p.n_threads = 2;
        return mst::ModelHandle(dir, p);
    }

    // Logits of every position of a 20-token prompt, prefilled in batches of n_batch.
    static std::vector<float> logits(const mst::ModelHandle &model, uint32_t n_batch = 0) {
        mst_session_params sp = mst::session_params();
        sp.n_batch = n_batch;
        std::vector<int32_t> prompt;
        for (int32_t i = 0; i < 20; ++i) prompt.push_back((i * 37 + 11) % 1000);
        return mst::test::prompt_logits(model, prompt, sp);
    }

    static double error(const std::vector<float> &a, const std::vector<float> &b) {
        EXPECT_EQ(a.size(), b.size());
        return mst::test::relative_error(a.data(), b.data(), int64_t(b.size()));
    }

    std::string root_;
};

TEST_F(DeepseekV3Model, Fp8MatchesFloatFormOfTheSameValues) {
    for (bool fused : {false, true}) {
        SCOPED_TRACE(fused ? "fused experts" : "per-expert tensors");
        SyntheticDeepseek o;
        o.fused_experts = fused;
        const std::string plain = write(fused ? "f32_fused" : "f32", o);
        o.fp8 = true;
        const std::string fp8 = write(fused ? "fp8_fused" : "fp8", o);
        const mst::ModelHandle a = load(plain), b = load(fp8);
        const std::vector<float> want = logits(a);
        double scale = 0.0;
        for (float v : want) scale = std::max(scale, double(std::abs(v)));
        ASSERT_GT(scale, 0.1);  // a model that computes something
        EXPECT_LT(error(logits(b), want), kSameFunction);
        EXPECT_LT(error(logits(b, 1), want), kSameFunction);  // decode steps: the absorbed path
        EXPECT_LT(error(logits(b, 7), want), kSameFunction);
        // Every expert read from disk: the scales travel with their expert.
        EXPECT_LT(error(logits(load(fp8, 0)), want), kSameFunction);
    }
}

TEST_F(DeepseekV3Model, MixedFp8AndBf16Tensors) {
    SyntheticDeepseek o;
    o.bf16_expert_down = true;
    const std::string plain = write("mixed_f32", o);
    o.fp8 = true;
    const std::string fp8 = write("mixed_fp8", o);
    EXPECT_LT(error(logits(load(fp8)), logits(load(plain))), kSameFunction);
}

TEST_F(DeepseekV3Model, SizesCountParametersNotScales) {
    SyntheticDeepseek o;
    // The models outlive their infos: the strings in an info are owned by its model.
    const mst::ModelHandle f32_model = load(write("f32", o));
    o.fp8 = true;
    const mst::ModelHandle fp8_model = load(write("fp8", o));
    const mst_model_info f32 = f32_model.info(), fp8 = fp8_model.info();

    const uint64_t per_expert = 3 * S::kExpertFfn * S::kHidden;
    const uint64_t qk = S::kNope + S::kRope;
    const uint64_t attention = S::kQLora * S::kHidden + S::kQLora + S::kHeads * qk * S::kQLora +
                               (S::kKvLora + S::kRope) * S::kHidden + S::kKvLora +
                               S::kHeads * (S::kNope + S::kV) * S::kKvLora + S::kHidden * S::kHeads * S::kV;
    const uint64_t dense = 2 * S::kVocab * S::kHidden + S::kHidden + S::kLayers * (2 * S::kHidden + attention) +
                           3 * S::kDenseFfn * S::kHidden +
                           (S::kLayers - 1) * (S::kExperts * S::kHidden + S::kExperts + per_expert);
    const uint64_t total = dense + (S::kLayers - 1) * S::kExperts * per_expert;
    for (const mst_model_info &i : {f32, fp8}) {
        EXPECT_EQ(std::string(i.architecture), "deepseek_v3");
        EXPECT_EQ(i.n_moe_layers, S::kLayers - 1);
        EXPECT_EQ(i.n_params_total, total);
        EXPECT_EQ(i.n_params_active, dense + (S::kLayers - 1) * S::kTopK * per_expert);
        EXPECT_EQ(i.kv_cache_bytes_per_token, (S::kKvLora + S::kRope) * 4 * S::kLayers);
        EXPECT_EQ(i.kv_cache_full_bytes_per_token, S::kHeads * (qk + S::kV) * 4 * S::kLayers);
    }
    // An expert: gate and up [40][64] in 16x32 blocks (3x2 scales), down [64][40] (4x2).
    EXPECT_EQ(f32.expert_bytes_each, per_expert * 4);
    EXPECT_EQ(fp8.expert_bytes_each, per_expert + (2 * 3 * 2 + 4 * 2) * 4);
    EXPECT_EQ(fp8.expert_bytes_total, fp8.expert_bytes_each * S::kExperts * (S::kLayers - 1));
    // Resident FP8 projections keep 1 byte per weight plus their scales, where the float
    // form holds 4; kv_b_proj is dequantised to float32 in both.
    const auto saved = [](uint64_t rows, uint64_t cols) {
        return 3 * rows * cols - ((rows + 15) / 16) * ((cols + 31) / 32) * 4;
    };
    uint64_t resident_saving = saved(S::kDenseFfn, S::kHidden) * 2 + saved(S::kHidden, S::kDenseFfn);
    for (int64_t l = 0; l < S::kLayers; ++l)
        resident_saving += saved(S::kQLora, S::kHidden) + saved(S::kHeads * qk, S::kQLora) +
                           saved(S::kKvLora + S::kRope, S::kHidden) + saved(S::kHidden, S::kHeads * S::kV);
    resident_saving += (S::kLayers - 1) * (2 * saved(S::kExpertFfn, S::kHidden) + saved(S::kHidden, S::kExpertFfn));
    EXPECT_EQ(f32.resident_bytes - fp8.resident_bytes, resident_saving);
}

TEST_F(DeepseekV3Model, MissingOrMisshapenScalesAreNamed) {
    SyntheticDeepseek o;
    o.fp8 = true;
    o.block_rows = 16;
    const std::string dir = write("fp8", o);
    // The same checkpoint read with a block size its scales do not fit.
    nlohmann::json bad = {{"quantization_config", {{"weight_block_size", {32, 32}}}}};
    o.config_overrides = bad;
    const std::string wrong_block = write("wrong_block", o);
    try {
        load(wrong_block);
        FAIL() << "loaded with scales of the wrong shape";
    } catch (const mst::Exception &e) {
        EXPECT_EQ(e.status(), MST_ERR_BAD_FORMAT) << e.what();
        EXPECT_NE(std::string(e.what()).find("_scale_inv' have shape"), std::string::npos) << e.what();
    }
    EXPECT_NO_THROW(load(dir));

    o.config_overrides = nlohmann::json::object();
    o.omit_tensor = "model.layers.2.mlp.experts.3.up_proj.weight_scale_inv";
    const std::string missing = write("missing_scale", o);
    try {
        load(missing);
        FAIL() << "loaded without a scale tensor";
    } catch (const mst::Exception &e) {
        EXPECT_EQ(e.status(), MST_ERR_BAD_FORMAT) << e.what();
        EXPECT_NE(std::string(e.what()).find("'model.layers.2.mlp.experts.3.up_proj.weight' has no block scales"),
                  std::string::npos)
            << e.what();
    }
}

TEST_F(DeepseekV3Model, UnsupportedVariantsAreRefused) {
    struct Case {
        nlohmann::json overrides;
        mst_status status;
        const char *message;
    };
    const Case cases[] = {
        {{{"quantization_config", {{"quant_method", "compressed-tensors"}}}},
         MST_ERR_UNSUPPORTED,
         "compressed-tensors"},
        {{{"scoring_func", "softmax"}}, MST_ERR_UNSUPPORTED, "scoring_func"},
        {{{"topk_method", "group_limited_greedy"}}, MST_ERR_UNSUPPORTED, "topk_method"},
        {{{"moe_layer_freq", 2}}, MST_ERR_UNSUPPORTED, "moe_layer_freq"},
        {{{"kv_lora_rank", nullptr}}, MST_ERR_BAD_FORMAT, "kv_lora_rank"},
        {{{"n_group", 3}}, MST_ERR_BAD_FORMAT, "n_group 3 does not divide"},
        {{{"qk_rope_head_dim", 7}}, MST_ERR_BAD_FORMAT, "qk_rope_head_dim"},
    };
    int i = 0;
    for (const Case &c : cases) {
        SyntheticDeepseek o;
        o.config_overrides = c.overrides;
        const std::string dir = write("case" + std::to_string(i++), o);
        try {
            load(dir);
            ADD_FAILURE() << "loaded " << c.overrides.dump();
        } catch (const mst::Exception &e) {
            EXPECT_EQ(e.status(), c.status) << e.what();
            EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << e.what();
        }
    }
}

TEST_F(DeepseekV3Model, KimiK2ModelTypeLoadsTheSameModel) {
    SyntheticDeepseek o;
    const std::string ds = write("ds", o);
    o.config_overrides = {{"model_type", "kimi_k2"}};
    const std::string kimi = write("kimi", o);
    EXPECT_EQ(error(logits(load(kimi)), logits(load(ds))), 0.0);
}

// Published configs: what the latent cache saves per token and per 4096-token context.
TEST(DeepseekV3Settings, KvCacheOfPublishedConfigs) {
    const std::string dir = mst::test::shared_path("configs");
    if (dir.empty()) GTEST_SKIP() << "no ../shared/configs";
    const mst::ModelConfig ds = mst::parse_model_config_file(dir + "/deepseek-v3.json");
    const mst::DeepseekV3Settings s = mst::deepseek_v3_settings(ds);
    // (512 + 64) floats x 61 layers, against 128 heads x (192 + 128) floats x 61 layers.
    EXPECT_EQ(s.latent_kv_bytes_per_token(ds.n_layers), 140544u);
    EXPECT_EQ(s.full_kv_bytes_per_token(ds.n_layers), 9994240u);
    EXPECT_EQ(s.latent_kv_bytes_per_token(ds.n_layers) * 4096, 575668224u);  // 549 MiB
    EXPECT_EQ(s.full_kv_bytes_per_token(ds.n_layers) * 4096, 40936407040u);  // 38.1 GiB
    EXPECT_EQ(s.fp8_block.rows, 128);
    EXPECT_EQ(s.fp8_block.cols, 128);
    EXPECT_EQ(s.routing.n_group, 8);
    EXPECT_EQ(s.routing.topk_group, 4);
    EXPECT_EQ(s.first_dense_layers, 3);
    EXPECT_EQ(s.shared_intermediate, 2048);
    const double mscale = 0.1 * std::log(40.0) + 1.0;
    EXPECT_FLOAT_EQ(s.mla.softmax_scale, float(mscale * mscale / std::sqrt(192.0)));

    const mst::ModelConfig kimi = mst::parse_model_config_file(dir + "/kimi-k2-instruct.json");
    const mst::DeepseekV3Settings k = mst::deepseek_v3_settings(kimi);
    EXPECT_EQ(k.latent_kv_bytes_per_token(kimi.n_layers), 140544u);
    EXPECT_EQ(k.full_kv_bytes_per_token(kimi.n_layers), 4997120u);  // 64 heads
    EXPECT_EQ(k.routing.n_group, 1);
    EXPECT_FLOAT_EQ(k.routing.scaling, 2.827f);
}

}  // namespace
