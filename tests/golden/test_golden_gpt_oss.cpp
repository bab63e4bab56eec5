// gpt-oss against reference logits from Hugging Face transformers (golden_model_suite.h):
// the project's gpt_oss_tiny (float experts) and gpt_oss_mxfp4 (MXFP4 experts as the
// published checkpoints store them; its reference ran on the dequantised experts, which
// are exact in bf16) and the shared fixture.
//
// The shared fixture's `logits` and `greedy_ids` were computed with RoPE frequencies
// rounded to bf16 (what transformers holds for a model in bf16), its logits_topk1 with
// float32 ones; each is loaded to match (rope_bf16_frequencies). With float32 frequencies
// its logits are 1.4e-3 away through YaRN.
#include "golden_model_suite.h"

namespace {

using golden_suite::GoldenDataset;
using golden_suite::GoldenModel;

std::vector<GoldenDataset> datasets() {
    return {
        {"gpt_oss_tiny", mst::test::data_path("gpt_oss_tiny")},
        {"gpt_oss_mxfp4", mst::test::data_path("gpt_oss_mxfp4")},
        {"shared_fixture", mst::test::shared_path("fixtures/gpt_oss"), golden_suite::kLogitTolerance, true},
    };
}

INSTANTIATE_TEST_SUITE_P(GptOss, GoldenModel, ::testing::ValuesIn(golden_suite::with_backends(datasets())), golden_suite::golden_dataset_name);

}  // namespace
