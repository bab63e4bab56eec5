// Cache-aware routing: which missing experts are replaced, by which cached ones, and when not.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_eval.h"
#include "moestream.hpp"
#include "router/cache_substitution.h"
#include "test_paths.h"

namespace mst {
namespace {

struct Token {
    std::vector<int32_t> ids;
    std::vector<float> weights;
};

// One token, top-3 {0, 1, 2} with weights .5 .3 .2, candidates (top-6) adding 3, 4, 5 at
// .15 .1 .05; `cached` says which experts are in memory.
uint64_t run(float ratio, const std::set<int32_t> &cached, Token &t) {
    t.ids = {0, 1, 2};
    t.weights = {0.5f, 0.3f, 0.2f};
    const std::vector<int32_t> cand = {0, 1, 2, 3, 4, 5};
    const std::vector<float> cand_w = {0.5f, 0.3f, 0.2f, 0.15f, 0.1f, 0.05f};
    return substitute_cached_experts(ratio, 1, 3, t.ids.data(), t.weights.data(), 6, cand.data(), cand_w.data(),
                                     [&](int32_t e) { return cached.count(e) > 0; });
}

TEST(CacheSubstitution, ACachedNearMissReplacesAMissingExpert) {
    Token t;
    // 2 is missing; 4 is cached and scored .1, half of 2's .2: replaced at ratio .5.
    EXPECT_EQ(run(0.5f, {0, 1, 4}, t), 1u);
    EXPECT_EQ(t.ids, (std::vector<int32_t>{0, 1, 4}));
    EXPECT_EQ(t.weights, (std::vector<float>{0.5f, 0.3f, 0.2f}));  // the substitute takes 2's weight
}

TEST(CacheSubstitution, TooWeakACandidateIsNotUsed) {
    Token t;
    EXPECT_EQ(run(0.6f, {0, 1, 4}, t), 0u);  // .1 < .6 x .2
    EXPECT_EQ(t.ids, (std::vector<int32_t>{0, 1, 2}));
    EXPECT_EQ(run(0.0f, {0, 1, 3, 4, 5}, t), 0u);  // 0 = off
    EXPECT_EQ(t.ids, (std::vector<int32_t>{0, 1, 2}));
}

TEST(CacheSubstitution, TheTopExpertAndCachedChoicesStay) {
    Token t;
    // 0 (the top one) is missing but is never replaced; 1 and 2 are cached: nothing to do.
    EXPECT_EQ(run(0.1f, {1, 2, 3, 4, 5}, t), 0u);
    EXPECT_EQ(t.ids, (std::vector<int32_t>{0, 1, 2}));
}

TEST(CacheSubstitution, TheHeaviestMissingExpertGetsTheBestCandidateEachOnce) {
    Token t;
    // 1 and 2 missing, 3 and 5 cached: 1 (.3) takes 3 (.15, ratio .5), 2 (.2) takes 5 (.05,
    // ratio .25): both pass at .25; 3 is not used twice.
    EXPECT_EQ(run(0.25f, {0, 3, 5}, t), 2u);
    EXPECT_EQ(t.ids, (std::vector<int32_t>{0, 3, 5}));
    // At .5, 1 takes 3 (.15 >= .15); 5 (.05) is too weak for 2 (needs .1).
    EXPECT_EQ(run(0.5f, {0, 3, 5}, t), 1u);
    EXPECT_EQ(t.ids, (std::vector<int32_t>{0, 3, 2}));
}

TEST(CacheSubstitution, DroppedSlotsAndTokensAreIndependent) {
    // Two tokens; the first has a dropped slot (-1), which is left alone.
    std::vector<int32_t> ids = {0, -1, /**/ 4, 5};
    const std::vector<float> w = {0.7f, 0.0f, /**/ 0.6f, 0.4f};
    const std::vector<int32_t> cand = {0, 1, 2, 3, /**/ 4, 5, 6, 7};
    const std::vector<float> cand_w = {0.7f, 0.2f, 0.05f, 0.05f, /**/ 0.6f, 0.3f, 0.25f, 0.1f};
    const std::set<int32_t> cached = {2, 6};
    EXPECT_EQ(substitute_cached_experts(0.8f, 2, 2, ids.data(), w.data(), 4, cand.data(), cand_w.data(),
                                        [&](int32_t e) { return cached.count(e) > 0; }),
              1u);
    EXPECT_EQ(ids, (std::vector<int32_t>{0, -1, /**/ 4, 6}));  // .25 >= .8 x .3
}

// Decoding the trained Qwen3-MoE token by token with an expert cache of a quarter of its
// experts: with substitution some chosen experts are served by cached ones, so fewer are
// read; off, none are replaced. Each session has a model of its own (its own cache).
struct Decoded {
    mst_session_stats stats;
    std::vector<float> last_logits;
};

Decoded decode(float substitute) {
    mst_model_params params = model_params();
    params.expert_cache_bytes = 96u * 48u * 1024u;  // 96 of the 384 bf16 experts (48 KiB each): 25 %
    params.prefetch = 0;
    const ModelHandle model(test::data_path("qwen3_moe_trained"), params);
    SessionHandle session(model);
    mst_expert_budget b;
    mst_expert_budget_default(&b);
    b.cache_substitute = substitute;
    check(mst_session_set_expert_budget(session.get(), &b));
    mst_expert_budget back{};
    back.struct_size = sizeof back;
    check(mst_session_get_expert_budget(session.get(), &back));
    EXPECT_EQ(back.cache_substitute, substitute);
    const std::vector<int32_t> tokens = model.tokenize(
        "def read_config(path):\n    with open(path) as f:\n        return json.load(f)\n\n"
        "The router sends each token to a few experts; the cache keeps the ones used most.");
    for (int32_t t : tokens) session.eval({t});
    return Decoded{session.stats(), session.logits()};
}

TEST(CacheSubstitutionSession, FewerReadsWhenOnNoneWhenOff) {
    const Decoded off = decode(0.0f);
    const Decoded on = decode(0.5f);
    EXPECT_EQ(off.stats.experts_substituted, 0u);
    EXPECT_GT(on.stats.experts_substituted, 0u);
    EXPECT_EQ(on.stats.experts_chosen, off.stats.experts_chosen);
    EXPECT_LT(on.stats.expert_cache_misses, off.stats.expert_cache_misses);
    EXPECT_LT(on.stats.expert_bytes_read, off.stats.expert_bytes_read);
    EXPECT_NE(on.last_logits, off.last_logits);  // the replaced experts did change the output
}

TEST(CacheSubstitutionSession, OutOfRangeIsRefused) {
    const ModelHandle model(test::data_path("qwen3_moe_tiny"));
    SessionHandle session(model);
    mst_expert_budget b;
    mst_expert_budget_default(&b);
    EXPECT_EQ(b.cache_substitute, 0.0f);
    b.cache_substitute = 1.5f;
    EXPECT_EQ(mst_session_set_expert_budget(session.get(), &b), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("cache_substitute"), std::string::npos);
}

// `eval --decode-order` scores token by token; the full budget then agrees with the
// reference (evaluated as prompts) to float rounding, and the JSON says which order it used.
TEST(CacheSubstitutionSession, EvalDecodeOrderMatchesTheReferenceAtFullBudget) {
    const nlohmann::json out =
        test::run_cli_eval(MST_CLI_PATH, test::data_path("qwen3_moe_tiny"),
                           "Experts are small networks. The router sends each token to a few of them.",
                           {"--ctx", "12", "--decode-order", "--cache-mb", "0", "--cache-substitute", "0.5", "--sweep", "0"});
    ASSERT_FALSE(out.is_null());
    ASSERT_EQ(out["results"].size(), 1u);
    const nlohmann::json &r = out["results"][0];
    EXPECT_TRUE(r["decode_order"].get<bool>());
    // With no cache nothing is resident: nothing to substitute, the output is the reference's.
    EXPECT_EQ(r["experts_substituted_fraction"].get<double>(), 0.0);
    EXPECT_LT(r["kl_mean"].get<double>(), 1e-4);
    EXPECT_EQ(r["top1_agreement"].get<double>(), 1.0);
}

}  // namespace
}  // namespace mst
