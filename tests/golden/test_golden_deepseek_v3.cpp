// DeepSeek-V3, Kimi K2 and Kimi K2.5 against reference logits from Hugging Face transformers
// (golden_model_suite.h): the project's own datasets (tests/data: bf16 DeepSeek-V3, its
// FP8 form with 128x128 block scales whose reference ran on the dequantised float32
// weights, Kimi K2, and Kimi K2.5 with INT4 experts), and the independent shared fixtures (skipped when ../shared is
// absent). Batched prefill takes the expanded MLA path and token-by-token decode the
// absorbed one, so the suite's prefill and decode tests check both against the reference.
//
// The shared fixtures' `logits` and `greedy_ids` were computed with RoPE frequencies
// rounded to bf16 (what transformers holds for a model in bf16), their `logits_topk2`
// with float32 ones. Each is loaded to match (rope_bf16_frequencies), so every matrix is
// held to the same bound and the greedy ids must match exactly (with float32 frequencies
// the fixtures' logits are 1.4e-3 and 2.1e-3 away through YaRN).
//
// Beyond the suite: the latent KV cache's size (GoldenDeepseekV3 below).
#include "golden_model_suite.h"

#include "format/model_config.h"

namespace {

using golden_suite::GoldenDataset;
using golden_suite::GoldenModel;

std::vector<GoldenDataset> datasets() {
    std::vector<GoldenDataset> out = {
        {"deepseek_v3_tiny", mst::test::data_path("deepseek_v3_tiny")},
        {"deepseek_v3_fp8", mst::test::data_path("deepseek_v3_fp8")},
        {"kimi_k2_tiny", mst::test::data_path("kimi_k2_tiny")},
        // trained from scratch (tests/reference/train_moe.py --arch deepseek_v3): 128 experts
        // in 8 groups, top-8 of 4 groups, bias from the auxiliary-loss-free balancing
        {"deepseek_v3_trained", mst::test::data_path("deepseek_v3_trained")},
        // Kimi K2.5's layout: the wrapper's "language_model." prefix, a vision tower that is
        // not read, compressed-tensors INT4 experts (group 32) computed on as stored. Its
        // reference ran on the dequantised experts (q * scale, exact in float32).
        {"kimi_k25_int4", mst::test::data_path("kimi_k25_int4"), golden_suite::kLogitTolerance, false, "cpu", {},
         {"vision_tower.", "mm_projector."}},
        {"shared_deepseek_v3", mst::test::shared_path("fixtures/deepseek_v3"), golden_suite::kLogitTolerance, true},
        {"shared_kimi_k2", mst::test::shared_path("fixtures/kimi_k2"), golden_suite::kLogitTolerance, true},
    };
    // kv_b_proj is multiplied transposed (absorbed into the query), not through
    // matmul_block_fp8: an FP8 one is held dequantised (bf16 ones are unaffected).
    for (GoldenDataset &d : out) d.fp8_dequantized_suffixes = {".self_attn.kv_b_proj.weight"};
    return out;
}

INSTANTIATE_TEST_SUITE_P(DeepseekV3, GoldenModel, ::testing::ValuesIn(golden_suite::with_backends(datasets())),
                         golden_suite::golden_dataset_name);

// The suite's fixture, for the tests only these datasets have.
class GoldenDeepseekV3 : public GoldenModel {};

TEST_P(GoldenDeepseekV3, KvCacheHoldsLatentsNotPerHeadKeysAndValues) {
    const mst_model_info info = load().info();
    const mst::ModelConfig c = mst::parse_model_config_file(GetParam().dir + "/config.json");
    const uint64_t latent = c.raw.at("kv_lora_rank").get<uint64_t>(),
                   rope = c.raw.at("qk_rope_head_dim").get<uint64_t>();
    const uint64_t qk = c.raw.at("qk_nope_head_dim").get<uint64_t>() + rope, v = c.raw.at("v_head_dim").get<uint64_t>();
    EXPECT_EQ(info.kv_cache_bytes_per_token, (latent + rope) * 4 * uint64_t(c.n_layers));
    EXPECT_EQ(info.kv_cache_full_bytes_per_token, uint64_t(c.n_heads) * (qk + v) * 4 * uint64_t(c.n_layers));
}

INSTANTIATE_TEST_SUITE_P(DeepseekV3, GoldenDeepseekV3, ::testing::ValuesIn(golden_suite::with_backends(datasets())),
                         golden_suite::golden_dataset_name);

}  // namespace
