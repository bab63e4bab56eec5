// Qwen3.5 MoE and Qwen3-Next (one implementation) against reference logits from Hugging
// Face transformers (golden_model_suite.h): the project's own datasets (tests/data, made by
// tests/reference/make_reference_archs.py: the text model, the multimodal wrapper layout
// with fused experts and ignored vision / MTP tensors, and Qwen3-Next's fused projections)
// and, when present, the independent shared fixture.
//
// Both references run prefill through the chunked form of the gated delta rule and
// decode through the recurrent one; moestream runs the recurrent form for both, so the
// suite's prefill comparison also checks that the two forms agree, and its token-by-token
// one (n_batch 1) that the recurrent state and the convolution history carry from call to
// call.
//
// The shared fixture's `logits` and `greedy_ids` were computed with RoPE frequencies
// rounded to bf16, its `logits_topk2` with float32 ones: each is loaded to match
// (rope_bf16_frequencies). The project's own references keep them in float32.
//
// Beyond the suite: batches shorter than the convolution's history and a session reset
// (GoldenQwen35 below).
#include "golden_model_suite.h"

namespace {

using golden_suite::GoldenDataset;
using golden_suite::GoldenModel;

// Every project dataset has decode-step and top-2 references; the shared fixture top-2.
const std::vector<std::string> kProjectMatrices = {"logits_decode", "logits_topk2"};

std::vector<GoldenDataset> datasets() {
    return {
        {.name = "qwen3_5_moe_tiny",
         .dir = mst::test::data_path("qwen3_5_moe_tiny"),
         .required_matrices = kProjectMatrices},
        {.name = "qwen3_5_moe_wrapped",
         .dir = mst::test::data_path("qwen3_5_moe_wrapped"),
         .required_matrices = kProjectMatrices,
         .unread_tensor_prefixes = {"model.visual.", "mtp."}},
        {.name = "qwen3_next_tiny",
         .dir = mst::test::data_path("qwen3_next_tiny"),
         .required_matrices = kProjectMatrices},
        // trained from scratch (tests/reference/train_moe.py --arch qwen3_5_moe): 8 layers,
        // 128 experts top-8; its reduced-budget reference is top-4
        {.name = "qwen3_5_moe_trained",
         .dir = mst::test::data_path("qwen3_5_moe_trained"),
         .required_matrices = {"logits_decode", "logits_topk4"}},
        {.name = "shared_fixture",
         .dir = mst::test::shared_path("fixtures/qwen3_5_moe"),
         .bf16_rope_reference = true,
         .required_matrices = {"logits_topk2"}},
    };
}

INSTANTIATE_TEST_SUITE_P(Qwen35Moe, GoldenModel, ::testing::ValuesIn(golden_suite::with_backends(datasets())),
                         golden_suite::golden_dataset_name);

// The suite's fixture, for the tests only these datasets have.
class GoldenQwen35 : public GoldenModel {};

TEST_P(GoldenQwen35, BatchesShorterThanConvolutionHistoryMatchReference) {
    // Batches of 2, shorter than the convolution's history of 3, continue the state from
    // the middle of the previous batch (the suite's batches of 5 do not).
    const mst::ModelHandle model = load();
    expect_matches(prefill_logits(model, 2), golden_.logits(), "batch2");
}

TEST_P(GoldenQwen35, ResetStartsTheRecurrentStateOver) {
    // After a reset, evaluation starts at position 0 again: the linear-attention state must
    // start from zeros, not from what the previous prompt left.
    const mst::ModelHandle model = load();
    mst_session_params sp = mst::session_params();
    sp.all_logits = 1;
    mst::SessionHandle session(model, sp);
    session.eval(golden_.input_ids);
    session.eval({golden_.input_ids.front()});
    session.reset();
    session.eval(golden_.input_ids);
    expect_matches(all_logits(session), golden_.logits(), "after_reset");
}

INSTANTIATE_TEST_SUITE_P(Qwen35Moe, GoldenQwen35, ::testing::ValuesIn(golden_suite::with_backends(datasets())),
                         golden_suite::golden_dataset_name);

}  // namespace
