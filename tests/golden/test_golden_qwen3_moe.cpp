// Qwen3-MoE against reference logits from Hugging Face transformers (golden_model_suite.h):
// the project's own datasets (tests/data, made by tests/reference/make_reference.py: one
// file, sharded with fused experts and an older config, mixed F16/F32/BF16; and a trained
// model, made by tests/reference/train_moe.py) and the independent shared fixture, whose
// `logits` and `greedy_ids` were made with bf16-rounded RoPE frequencies and are loaded to
// match (with float32 frequencies they are 5e-4 away).
#include "golden_model_suite.h"

namespace {

using golden_suite::GoldenDataset;
using golden_suite::GoldenModel;

std::vector<GoldenDataset> datasets() {
    return {
        {"tiny", mst::test::data_path("qwen3_moe_tiny")},
        {"sharded_legacy_fused", mst::test::data_path("qwen3_moe_sharded_legacy")},
        {"mixed_dtype", mst::test::data_path("qwen3_moe_mixed_dtype")},
        // Trained weights (train_moe.py): 64 experts, top-8, with its lowered budgets.
        {"trained", mst::test::data_path("qwen3_moe_trained"), golden_suite::kLogitTolerance, false, "cpu",
         {"logits_decode", "logits_topk4", "logits_topk2"}},
        {"shared_fixture", mst::test::shared_path("fixtures/qwen3_moe"), golden_suite::kLogitTolerance, true},
    };
}

INSTANTIATE_TEST_SUITE_P(Qwen3Moe, GoldenModel, ::testing::ValuesIn(golden_suite::with_backends(datasets())), golden_suite::golden_dataset_name);

}  // namespace
