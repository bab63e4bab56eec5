// GGML K-quant experts (convert --experts q6k .. q2k) against the checkpoint directory's
// logits on qwen3_moe_tiny (which match the transformers reference within the golden
// suite's float bound): the packed file holds the requested type, runs, and its logits
// stay finite and within the bounds below. The other weights stay bf16.
//
// Bounds: relative error of all prompt positions' logits and mean KL (nats), at about
// 1.6x what was measured, as test_golden_packed.cpp bounds q4 on the same model (0.18 /
// 0.054, for 5.0 bits per weight). This model's rows are 64 and 32 weights long, so every
// row is one padded super-block and the sub-block scales carry the fit; routers choose
// between near-equal random experts, so a switch of one position's experts sets the
// worst case (see test_golden_packed.cpp).
//
// The same files run whole on Vulkan (shaders/matmul_kquant.comp for the experts), prefill
// and decode, skipping with the reason when there is no Vulkan device: held to the CPU's
// bounds against the reference, and to kVulkanCpuBound against the CPU on the same file.
// The two differ by the CPU kernels' 8-bit activations (Q8_K: a step of 1/254 of a
// super-block's largest activation; the shader multiplies float activations), measured
// below at about 1e-2 for every type; the shader's own error against dequantize-then-
// multiply is test_vulkan_ops's (MatmulKQuantsMatchDequantizedReference).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "format/checkpoint.h"
#include "format/packed_format.h"
#include "golden.h"
#include "golden_backends.h"
#include "kquant_expert_bounds.h"
#include "moestream.hpp"
#include "packed_test_support.h"
#include "prompt_logits.h"
#include "test_paths.h"

namespace {

using Case = mst::test::KQuantExpertCase;

class GoldenKQuants : public ::testing::TestWithParam<Case> {
protected:
    void SetUp() override {
        dir_ = mst::test::data_path("qwen3_moe_tiny");
        golden_ = mst::test::load_golden(dir_ + "/golden.safetensors");
        tmp_ = mst::test::make_temp_dir("mst_golden_kquants_");
        ASSERT_FALSE(tmp_.empty());
    }
    void TearDown() override {
        if (!tmp_.empty()) std::filesystem::remove_all(tmp_);
    }

    std::vector<float> logits_of(const std::string &path) {
        return mst::test::cpu_prefill_logits(path, golden_.input_ids);
    }

    // Every position's logits of the golden prompt on `backend`, one prefill (n_batch 0) or
    // one token at a time (n_batch 1).
    std::vector<float> logits_on(const std::string &path, const char *backend, uint32_t n_batch) {
        mst_model_params p = mst::model_params();
        p.backend = backend;
        mst_session_params sp = mst::session_params();
        sp.n_batch = n_batch;
        return mst::test::prompt_logits(mst::ModelHandle(path, p), golden_.input_ids, sp);
    }

    std::string dir_, tmp_;
    mst::test::Golden golden_;
};

TEST_P(GoldenKQuants, ConvertedExpertsRunWithinBound) {
    const Case &c = GetParam();
    const std::string out = tmp_ + "/model.mst";
    mst::test::convert_checkpoint_for_test(dir_, out, c.experts, "bf16");
    const auto ck = mst::Checkpoint::open(out);
    ASSERT_NE(ck->packed(), nullptr);
    for (const auto &layer : ck->packed()->experts)
        for (const mst::ExpertLayout &e : layer)
            for (const mst::ExpertMatrix &m : e.parts) EXPECT_EQ(m.dtype, c.dtype);

    const std::vector<float> reference = logits_of(dir_), got = logits_of(out);
    ASSERT_EQ(got.size(), reference.size());
    for (float v : got) ASSERT_TRUE(std::isfinite(v));
    const int64_t rows = int64_t(got.size()) / golden_.vocab;
    const double err = mst::test::relative_error(got.data(), reference.data(), int64_t(got.size()));
    const double kl = mst::test::mean_kl_divergence(reference.data(), got.data(), rows, golden_.vocab);
    std::printf("kquant-measure qwen3_moe_tiny experts=%s rel_err=%.3e kl=%.3e\n", c.experts, err, kl);
    EXPECT_LT(err, c.err_bound);
    EXPECT_LT(kl, c.kl_bound);
}

TEST_P(GoldenKQuants, RunWholeOnVulkanAsOnTheCpu) {
    // measured on lavapipe, prefill and decode alike: q6k 1.058e-2, q5k 1.018e-2, q4k 1.060e-2,
    // q3k 1.036e-2, q2k 8.87e-3; the same for every type because it is the activations'
    // rounding, not the weights'. Vulkan is the nearer of the two to the reference on each.
    constexpr double kVulkanCpuBound = 0.016;
    if (const std::string why = golden_suite::backend_unavailable("vulkan"); !why.empty()) GTEST_SKIP() << why;
    const Case &c = GetParam();
    const std::string out = tmp_ + "/model.mst";
    mst::test::convert_checkpoint_for_test(dir_, out, c.experts, "bf16");
    const std::vector<float> cpu = logits_on(out, "cpu", 0);
    const std::vector<float> reference = logits_of(dir_);
    for (const uint32_t n_batch : {0u, 1u}) {
        const std::vector<float> got = logits_on(out, "vulkan", n_batch);
        ASSERT_EQ(got.size(), cpu.size());
        const double err_cpu = mst::test::relative_error(got.data(), cpu.data(), int64_t(got.size()));
        const double err_ref = mst::test::relative_error(got.data(), reference.data(), int64_t(got.size()));
        std::printf("kquant-vulkan qwen3_moe_tiny experts=%s %s: against the cpu %.3e, against the reference %.3e\n",
                    c.experts, n_batch == 1 ? "decode" : "prefill", err_cpu, err_ref);
        EXPECT_LT(err_cpu, kVulkanCpuBound) << c.experts << " n_batch " << n_batch;
        EXPECT_LT(err_ref, c.err_bound) << c.experts << " n_batch " << n_batch;
    }
}

INSTANTIATE_TEST_SUITE_P(Qwen3MoeTiny, GoldenKQuants, ::testing::ValuesIn(mst::test::kKQuantExpertCases),
                         [](const ::testing::TestParamInfo<Case> &p) { return std::string(p.param.experts); });

}  // namespace
