// The packed format against the checkpoint-directory path on every reference dataset
// whose architecture this build supports: a bf16 pack computes the same logits, q8
// experts stay within 2e-2 relative error, q4 experts and q8 dense weights within the
// bounds measured below (README "Quantized types"). Architectures not in this build are
// skipped, so the table grows as architectures land.
#include <gtest/gtest.h>

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

// The bounds for a lossless pack and for q8 experts.
constexpr double kBf16Tolerance = 1e-5;
constexpr double kQ8Tolerance = 2e-2;
// Measured on the reference datasets (README "Quantized types"; worst so far: q4 experts
// 0.104 / KL 0.028 nats, q8 dense + q8 experts 0.028 / 0.0019) with about 2x headroom.
// These random-weight models are harsher than trained ones: no weight is redundant.
constexpr double kQ4Tolerance = 0.2;
constexpr double kQ4KlBound = 0.06;
constexpr double kDenseQ8Tolerance = 0.06;
constexpr double kDenseQ8KlBound = 5e-3;

struct Dataset {
    std::string name;
};

void PrintTo(const Dataset &d, std::ostream *os) { *os << d.name; }

std::vector<Dataset> datasets() {
    return {{"qwen3_moe_tiny"},   {"qwen3_moe_sharded_legacy"}, {"qwen3_moe_mixed_dtype"},
            {"qwen3_5_moe_tiny"}, {"qwen3_5_moe_wrapped"},      {"qwen3_next_tiny"},
            {"deepseek_v3_tiny"}, {"deepseek_v3_fp8"},          {"kimi_k2_tiny"},
            {"mixtral_tiny"},     {"gpt_oss_tiny"},             {"gpt_oss_mxfp4"}};
}

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

    // Prefill logits of every prompt position.
    std::vector<float> logits_of(const std::string &path) {
        mst_model_params p = mst::model_params();
        p.backend = "cpu";
        const mst::ModelHandle model(path, p);
        mst_session_params sp = mst::session_params();
        sp.all_logits = 1;
        mst::SessionHandle session(model, sp);
        session.eval(golden_.input_ids);
        const float *logits = nullptr;
        size_t rows = 0, vocab = 0;
        mst::check(mst_session_all_logits(session.get(), &logits, &rows, &vocab));
        return std::vector<float>(logits, logits + rows * vocab);
    }

    // Converts, computes the logits, and reports relative error and KL against the
    // directory's logits (the line the README table is made from).
    void measure(const char *experts, const char *dense, double *err, double *kl) {
        const std::string out = tmp_ + "/model.mst";
        mst::test::convert_checkpoint_for_test(dir_, out, experts, dense);
        const std::vector<float> got = logits_of(out);
        ASSERT_EQ(got.size(), reference_.size());
        const int64_t rows = int64_t(got.size()) / golden_.vocab;
        *err = mst::test::relative_error(got.data(), reference_.data(), int64_t(got.size()));
        *kl = mst::test::mean_kl_divergence(reference_.data(), got.data(), rows, golden_.vocab);
        std::printf("packed-measure %s experts=%s dense=%s rel_err=%.3e kl=%.3e\n", GetParam().name.c_str(), experts,
                    dense, *err, *kl);
        RecordProperty(std::string("rel_err_") + experts + "_" + dense, std::to_string(*err));
        RecordProperty(std::string("kl_") + experts + "_" + dense, std::to_string(*kl));
    }

    std::string dir_, tmp_;
    Golden golden_;
    std::vector<float> reference_;
};

TEST_P(GoldenPacked, Bf16PackMatchesDirectory) {
    double err = 0, kl = 0;
    measure("bf16", "bf16", &err, &kl);
    EXPECT_LT(err, kBf16Tolerance);
}

TEST_P(GoldenPacked, Q8ExpertsWithinBound) {
    double err = 0, kl = 0;
    measure("q8", "bf16", &err, &kl);
    EXPECT_LT(err, kQ8Tolerance);
}

TEST_P(GoldenPacked, Q4ExpertsWithinBound) {
    double err = 0, kl = 0;
    measure("q4", "bf16", &err, &kl);
    EXPECT_LT(err, kQ4Tolerance);
    EXPECT_LT(kl, kQ4KlBound);
}

TEST_P(GoldenPacked, Q8DenseAndExpertsWithinBound) {
    double err = 0, kl = 0;
    measure("q8", "q8", &err, &kl);
    EXPECT_LT(err, kDenseQ8Tolerance);
    EXPECT_LT(kl, kDenseQ8KlBound);
}

TEST_P(GoldenPacked, Q4ExpertsQ8DenseMeasured) {
    double err = 0, kl = 0;
    measure("q4", "q8", &err, &kl);
    EXPECT_LT(err, kQ4Tolerance);
    EXPECT_LT(kl, kQ4KlBound);
}

INSTANTIATE_TEST_SUITE_P(Datasets, GoldenPacked, ::testing::ValuesIn(datasets()),
                         [](const auto &param_info) { return param_info.param.name; });

}  // namespace
