// Mixtral against reference logits from Hugging Face transformers (golden_model_suite.h):
// the project's mixtral_tiny (tests/data) and the shared fixture.
//
// The shared fixture's `logits` were computed with RoPE frequencies rounded to bf16 (what
// a model cast to bf16 holds in its inv_freq buffer); moestream keeps them in float32 as
// the reference model does, which costs 4e-4 of relative error there, growing with
// position (1e-6 with the frequencies rounded to bf16).
#include "golden_model_suite.h"

namespace {

using golden_suite::GoldenDataset;
using golden_suite::GoldenModel;

std::vector<GoldenDataset> datasets() {
    return {
        {"mixtral_tiny", mst::test::data_path("mixtral_tiny")},
        {"shared_fixture", mst::test::shared_path("fixtures/mixtral")},
    };
}

INSTANTIATE_TEST_SUITE_P(Mixtral, GoldenModel, ::testing::ValuesIn(datasets()), golden_suite::golden_dataset_name);

}  // namespace
