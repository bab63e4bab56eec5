// gpt-oss against reference logits from Hugging Face transformers (golden_model_suite.h):
// the project's gpt_oss_tiny (float experts) and gpt_oss_mxfp4 (MXFP4 experts as the
// published checkpoints store them; its reference ran on the dequantised experts, which
// are exact in bf16) and the shared fixture.
//
// The shared fixture's `logits` were computed with RoPE frequencies rounded to bf16 (what
// a model cast to bf16 holds in its inv_freq buffer); moestream keeps them in float32 as
// the reference model does. Through YaRN (attention factor 1.35, positions up to 54) that
// costs 1.4e-3 of relative error there (3.0e-3 at the worst position), above the usual
// 1e-3; with the frequencies rounded to bf16 the same logits match to 1e-6, and the
// fixture's logits_topk1 (float32 frequencies) match to 1e-6 as they are. So that dataset
// is held to 2e-3, and the project's datasets, whose references keep float32
// frequencies, to the usual bound.
#include "golden_model_suite.h"

namespace {

using golden_suite::GoldenDataset;
using golden_suite::GoldenModel;

std::vector<GoldenDataset> datasets() {
    return {
        {"gpt_oss_tiny", mst::test::data_path("gpt_oss_tiny")},
        {"gpt_oss_mxfp4", mst::test::data_path("gpt_oss_mxfp4")},
        {"shared_fixture", mst::test::shared_path("fixtures/gpt_oss"), 2e-3},
    };
}

INSTANTIATE_TEST_SUITE_P(GptOss, GoldenModel, ::testing::ValuesIn(datasets()), golden_suite::golden_dataset_name);

}  // namespace
