// The packed format against the checkpoint-directory path on every reference dataset
// whose architecture this build supports: a bf16 pack computes the same logits, q8
// experts stay within 2e-2 relative error, q4 experts and q8 dense weights within the
// per-dataset bounds below (README "Types of weights"). Architectures not in this build
// are skipped, so the table grows as architectures land.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "golden.h"
#include "moestream.hpp"
#include "packed_test_support.h"
#include "test_paths.h"

namespace {

using mst::test::Golden;

// Lossless packs: the same bound on every dataset.
constexpr double kBf16Tolerance = 1e-5;
// q8 experts: the bound, met on every dataset but qwen3_next_tiny (below).
constexpr double kQ8Tolerance = 2e-2;

// q4 experts (alone and with q8 dense weights) and q8 dense weights: relative error and
// mean KL (nats) against the directory's logits, bounded per dataset at about 1.6x what
// was measured (README "The packed format and quantized weights" has the table). These
// random-weight models are harsh: no weight is redundant, and routers choose between
// near-equal experts, so a small perturbation can switch a token's experts and move that
// position's logits by 30-50% (mixtral_tiny, position 3); those switches, not the
// weights' own error, set the worst cases. The median position's error shows the rest.
struct Bounds {
    double q4_err, q4_kl, dense_err, dense_kl;
    double q8_err = kQ8Tolerance;
};
// Datasets whose architecture landed before its bounds were measured here.
constexpr Bounds kUnmeasured{0.3, 0.15, 0.15, 0.05};

struct Dataset {
    std::string name;
    Bounds bounds = kUnmeasured;
};

void PrintTo(const Dataset &d, std::ostream *os) { *os << d.name; }

std::vector<Dataset> datasets() {
    return {{"qwen3_moe_tiny", {0.18, 0.054, 0.045, 0.003}},
            {"qwen3_moe_sharded_legacy", {0.18, 0.054, 0.045, 0.003}},
            {"qwen3_moe_mixed_dtype", {0.14, 0.037, 0.03, 0.0015}},
            {"qwen3_5_moe_tiny", {0.41, 0.3, 0.2, 0.085}},
            {"qwen3_5_moe_wrapped", {0.41, 0.3, 0.2, 0.085}},
            // q8 experts: 2.85e-2. Four MoE layers of top-4 routing between near-equal
            // random experts: adding uniform noise of +-half a q8 step (amax / 254 per
            // block of 32) to its bf16 experts, with no quantization, moved its logits by
            // 1.8% RMS over the positions (a quarter step: 0.6%), so no 8-bit code with a
            // per-32 scale meets 2e-2 on it; searching q8 scales for the least error
            // gained 0.4%.
            {"qwen3_next_tiny", {0.37, 0.24, 0.17, 0.052, 0.045}},
            {"deepseek_v3_tiny", {0.16, 0.052, 0.056, 0.006}},
            // FP8 requantized from its dequantized values: held to deepseek_v3_tiny's
            // bounds from bf16 for q4 / q8 experts (measured 0.058 / 4.6e-3). q8 dense
            // weights (FP8 ones too) measured 0.085, median position 0.036 as
            // deepseek_v3_tiny's 0.032: one position's experts switch.
            {"deepseek_v3_fp8", {0.16, 0.052, 0.14, 0.027}},
            {"kimi_k2_tiny", {0.096, 0.017, 0.054, 0.0049}},
            // compressed-tensors INT4 experts are kept as stored: only the dense weights change.
            {"kimi_k25_int4", {1e-5, 1e-9, 0.056, 0.005}},
            {"mixtral_tiny", {0.26, 0.12, 0.15, 0.032}},
            // gpt-oss experts are multiplied transposed (or are MXFP4): none is quantized.
            {"gpt_oss_tiny", {1e-5, 1e-9, 0.11, 0.018}},
            {"gpt_oss_mxfp4", {1e-5, 1e-9, 0.1, 0.016}}};
}

struct Measured {
    double err = 0.0, median_row_err = 0.0, kl = 0.0;
};

class GoldenPacked : public ::testing::TestWithParam<Dataset> {
protected:
    void SetUp() override {
        dir_ = mst::test::data_path(GetParam().name);
        golden_ = mst::test::load_golden(dir_ + "/golden.safetensors");
        mst_model_params p = mst::model_params();
        p.backend = "cpu";
        mst_model *model = nullptr;
        const mst_status status = mst_model_load(dir_.c_str(), &p, &model);
        if (status == MST_ERR_UNSUPPORTED) GTEST_SKIP() << "not in this build: " << mst_last_error();
        ASSERT_EQ(status, MST_OK) << mst_last_error();
        mst_model_free(model);
        reference_ = logits_of(dir_);
        tmp_ = mst::test::make_temp_dir("mst_golden_packed_");
        ASSERT_FALSE(tmp_.empty());
    }
    void TearDown() override {
        if (!tmp_.empty()) std::filesystem::remove_all(tmp_);
    }

    std::vector<float> logits_of(const std::string &path) {
        return mst::test::cpu_prefill_logits(path, golden_.input_ids);
    }

    // Converts, computes the logits and measures them against the directory's (the
    // line the README table is made from).
    Measured measure(const char *experts, const char *dense) {
        const std::string out = tmp_ + "/model.mst";
        mst::test::convert_checkpoint_for_test(dir_, out, experts, dense);
        const std::vector<float> got = logits_of(out);
        Measured m;
        EXPECT_EQ(got.size(), reference_.size());
        if (got.size() != reference_.size()) return m;
        const int64_t V = golden_.vocab, rows = int64_t(got.size()) / V;
        m.err = mst::test::relative_error(got.data(), reference_.data(), int64_t(got.size()));
        m.kl = mst::test::mean_kl_divergence(reference_.data(), got.data(), rows, V);
        std::vector<double> row_err;
        for (int64_t r = 0; r < rows; ++r)
            row_err.push_back(mst::test::relative_error(got.data() + r * V, reference_.data() + r * V, V));
        std::nth_element(row_err.begin(), row_err.begin() + rows / 2, row_err.end());
        m.median_row_err = row_err[size_t(rows / 2)];
        std::printf("packed-measure %s experts=%s dense=%s rel_err=%.3e median_row=%.3e kl=%.3e\n",
                    GetParam().name.c_str(), experts, dense, m.err, m.median_row_err, m.kl);
        const std::string tag = std::string(experts) + "_" + dense;
        RecordProperty("rel_err_" + tag, std::to_string(m.err));
        RecordProperty("kl_" + tag, std::to_string(m.kl));
        return m;
    }

    std::string dir_, tmp_;
    Golden golden_;
    std::vector<float> reference_;
};

TEST_P(GoldenPacked, Bf16PackMatchesDirectory) {
    EXPECT_LT(measure("bf16", "bf16").err, kBf16Tolerance);
}

TEST_P(GoldenPacked, Q8ExpertsWithinBound) {
    EXPECT_LT(measure("q8", "bf16").err, GetParam().bounds.q8_err);
}

TEST_P(GoldenPacked, Q4ExpertsWithinBound) {
    const Bounds &b = GetParam().bounds;
    const Measured m = measure("q4", "bf16");
    EXPECT_LT(m.err, b.q4_err);
    EXPECT_LT(m.kl, b.q4_kl);
}

TEST_P(GoldenPacked, Q8DenseAndExpertsWithinBound) {
    const Bounds &b = GetParam().bounds;
    const Measured m = measure("q8", "q8");
    EXPECT_LT(m.err, b.dense_err);
    EXPECT_LT(m.kl, b.dense_kl);
}

TEST_P(GoldenPacked, Q4ExpertsQ8DenseWithinBound) {
    const Bounds &b = GetParam().bounds;
    const Measured m = measure("q4", "q8");
    EXPECT_LT(m.err, std::max(b.q4_err, b.dense_err));
    EXPECT_LT(m.kl, std::max(b.q4_kl, b.dense_kl));
}

INSTANTIATE_TEST_SUITE_P(Datasets, GoldenPacked, ::testing::ValuesIn(datasets()),
                         [](const auto &param_info) { return param_info.param.name; });

}  // namespace
