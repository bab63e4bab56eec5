// Mixtral against reference logits from Hugging Face transformers (golden_model_suite.h):
// the project's mixtral_tiny (tests/data) and the shared fixture.
//
// The shared fixture's `logits` were computed with RoPE frequencies rounded to bf16 (what
// transformers holds for a model in bf16) and are loaded to match (rope_bf16_frequencies;
// with float32 frequencies they are 4e-4 away, growing with position).
#include "golden_model_suite.h"

namespace {

using golden_suite::GoldenDataset;
using golden_suite::GoldenModel;

std::vector<GoldenDataset> datasets() {
    return {
        {"mixtral_tiny", mst::test::data_path("mixtral_tiny")},
        {"shared_fixture", mst::test::shared_path("fixtures/mixtral"), golden_suite::kLogitTolerance, true},
    };
}

INSTANTIATE_TEST_SUITE_P(Mixtral, GoldenModel, ::testing::ValuesIn(golden_suite::with_backends(datasets())), golden_suite::golden_dataset_name);

}  // namespace
