// bench_routing's fitting of the learned eviction policy (bench/learned_eviction.h, over the
// library's features and policy) on hand-made traces whose
// answers are known: the features of an expert that comes back every 5 tokens, the training
// rows' labels, a model fitted on one half of such a trace keeping that expert on the other
// half, where LRU keeps none, and the table of which experts follow which.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "experts/cache_replay.h"
#include "learned_eviction.h"

namespace mst {
namespace {

// One sparse layer (model layer 3), one expert a token: expert 0 at every 5th token, and
// between them "fillers" 1..63, in turn (each back after about 79 tokens) or at random (back
// after a gap that their history says nothing about).
RouteTraceData periodic_trace(int64_t tokens, bool random_fillers = false) {
    RouteTraceData t = RouteTraceData::sized(64, 1, 0, tokens, {3});
    std::mt19937 rng(7);
    std::uniform_int_distribution<int32_t> pick(1, 63);
    int32_t filler = 0;
    for (int64_t tok = 0; tok < tokens; ++tok)
        t.ids[t.at(tok, 0)] = tok % 5 == 0 ? 0 : random_fillers ? pick(rng) : 1 + (filler++ % 63);
    return t;
}

constexpr size_t kAge = kReuseHalfLives.size(), kGap1 = kAge + 1, kRecent = kAge + kReuseGaps + 1,
                 kShare = kRecent + 1, kScore = kShare + 1, kChosenNow = kScore + 1;

TEST(LearnedEviction, FeaturesOfAnExpertBackEveryFiveTokens) {
    const RouteTraceData t = periodic_trace(13);  // expert 0 at tokens 0, 5, 10
    const auto groups = decode_accesses(t);
    ReuseFeatures f(1);
    for (const auto &g : groups)
        for (const ExpertKey &k : g) f.lookup(k);
    EXPECT_EQ(f.token(3), 12);
    EXPECT_EQ(f.token(4), -1);
    const ReuseFeatureRow x = f.features(ExpertKey{3, 0});
    // Uses 2, 7 and 12 tokens ago.
    for (size_t h = 0; h < kReuseHalfLives.size(); ++h) {
        const double hl = kReuseHalfLives[h];
        const double decayed = std::exp2(-2 / hl) + std::exp2(-7 / hl) + std::exp2(-12 / hl);
        EXPECT_NEAR(x[h], std::log2(0.01 + decayed), 1e-4) << "half-life " << hl;
    }
    EXPECT_FLOAT_EQ(x[kAge], float(std::log2(3.0)));
    EXPECT_FLOAT_EQ(x[kGap1], float(std::log2(5.0)));      // 10 - 5
    EXPECT_FLOAT_EQ(x[kGap1 + 1], float(std::log2(5.0)));  // 5 - 0
    EXPECT_FLOAT_EQ(x[kGap1 + 2], float(std::log2(65535.0)));  // no fourth use
    EXPECT_FLOAT_EQ(x[kRecent], 3.0f);
    EXPECT_NEAR(x[kShare], std::log2(1e-4 + 3.0 / 13.0), 1e-5);
    EXPECT_FLOAT_EQ(x[kScore], 0.0f);
    EXPECT_FLOAT_EQ(x[kChosenNow], 0.0f);
    // The filler chosen at the latest token; a router score counts only for its own token.
    EXPECT_FLOAT_EQ(f.features(ExpertKey{3, 10})[kChosenNow], 1.0f);  // token 12 is the 10th filler
    f.router_score(ExpertKey{3, 0}, 0.5f);                            // for token 13, not yet looked up
    EXPECT_FLOAT_EQ(f.features(ExpertKey{3, 0})[kScore], 0.0f);
    f.lookup(ExpertKey{3, 0});
    EXPECT_FLOAT_EQ(f.features(ExpertKey{3, 0})[kScore], 0.5f);
    EXPECT_FLOAT_EQ(f.features(ExpertKey{3, 0})[kChosenNow], 1.0f);
    // Never seen: no uses, the longest age.
    const ReuseFeatureRow never = f.features(ExpertKey{3, 60});
    EXPECT_FLOAT_EQ(never[0], float(std::log2(0.01)));
    EXPECT_FLOAT_EQ(never[kAge], float(std::log2(65536.0)));
}

TEST(LearnedEviction, TrainingRowsCarryTheTokensToTheNextUse) {
    const RouteTraceData t = periodic_trace(1200);
    const auto groups = decode_accesses(t);
    const ReuseTrainingSet set = reuse_training_set(groups, nullptr, 1, 64, 1, 1);
    // Every expert at every token whose horizon (512 tokens) fits, plus later rows whose next
    // use is known: at least the first 1200 - 512 tokens' 64 experts.
    ASSERT_GE(set.rows.size(), size_t(1200 - 512) * 64);
    ASSERT_EQ(set.rows.size(), set.next.size());
    // The first row is token 0's expert 0: back in 5 tokens.
    EXPECT_EQ(set.next[0], 5u);
    EXPECT_FLOAT_EQ(set.rows[0][kChosenNow], 1.0f);
    for (size_t r = 0; r < set.rows.size(); ++r) {
        if (set.rows[r][kChosenNow] == 1.0f && set.rows[r][kGap1] == float(std::log2(5.0))) {
            EXPECT_EQ(set.next[r], 5u) << "row " << r;  // expert 0 just used
        }
        EXPECT_LE(set.next[r], kReuseHorizon);
    }
}

// Random fillers and a cache of one expert: LRU replaces it at nearly every token; a model of
// "back within 5 tokens" fitted on the first half learns that expert 0 always is and a filler
// seldom (about 6 %, whatever its history), so on the second half it keeps expert 0, refusing
// the fillers, and hits every expert-0 lookup but the first few, while the replay's features
// are cold (every expert new).
TEST(LearnedEviction, FittedOnOneHalfKeepsThePeriodicExpertOnTheOther) {
    const RouteTraceData t = periodic_trace(2000, true);
    const auto groups = decode_accesses(t);
    const std::vector<std::vector<ExpertKey>> fit(groups.begin(), groups.begin() + 1000), held(groups.begin() + 1000, groups.end());
    const ReuseTrainingSet set = reuse_training_set(fit, nullptr, 1, 64, 1, 1);
    ReplayOptions o;
    o.capacity = 1;
    EXPECT_GE(replay_belady(held, o).hits, 199u);  // expert 0's 200 lookups but the first, or more
    EXPECT_LT(replay_policy(held, "lru", o).hits, 20u);
    {
        const EvictionModel linear = fit_eviction_model(set, 5, false);
        const EvictionModel mlp = fit_eviction_mlp(set, 5, false, 8, 2);
        for (const EvictionModel *m : {&linear, &mlp}) {
            const ReplayResult r = replay_policy(held, PolicyFactory([&] { return make_learned_policy(*m); }), o);
            EXPECT_GE(r.hits, 197u) << m->name();
            EXPECT_LE(r.inserted, 8u) << m->name();  // expert 0, and fillers only while cold
        }
        // Once warm, expert 0 outranks every filler, at every age.
        ReuseFeatures f(1);
        double lowest_periodic = 1e300, highest_filler = -1e300;
        for (const auto &g : held) {
            f.lookup(g[0]);
            if (f.token(3) < 400) continue;  // warm: nearly every filler used four times
            lowest_periodic = std::min(lowest_periodic, linear.score(f.features(ExpertKey{3, 0})));
            for (int32_t e = 1; e < 64; ++e) highest_filler = std::max(highest_filler, linear.score(f.features(ExpertKey{3, e})));
        }
        EXPECT_GT(lowest_periodic, highest_filler) << linear.name();
    }
}

// Experts 0..7 in turn: each is followed by the next one, the one after within 2 tokens.
TEST(LearnedEviction, AffinityIsTheShareOfTokensAnExpertFollows) {
    RouteTraceData t = RouteTraceData::sized(8, 1, 0, 800, {3});
    for (int64_t tok = 0; tok < 800; ++tok) t.ids[t.at(tok, 0)] = int32_t(tok % 8);
    const auto groups = decode_accesses(t);
    const ReuseAffinity next = fit_reuse_affinity(groups, 1, 8, 1), two = fit_reuse_affinity(groups, 1, 8, 2);
    EXPECT_FLOAT_EQ(next.at(3, 1, 2), 1.0f);
    EXPECT_FLOAT_EQ(next.at(3, 1, 3), 0.0f);
    EXPECT_FLOAT_EQ(two.at(3, 1, 3), 1.0f);
    EXPECT_FLOAT_EQ(two.at(3, 1, 4), 0.0f);
    EXPECT_FLOAT_EQ(two.at(3, 7, 0), 1.0f);  // across the turn of the cycle
    EXPECT_FLOAT_EQ(two.at(4, 1, 2), 0.0f);  // no such layer
    ReuseFeatures f(1, &next);
    for (size_t g = 0; g < 10; ++g) f.lookup(groups[g][0]);  // the latest: expert 1
    EXPECT_FLOAT_EQ(f.features(ExpertKey{3, 2}).back(), 1.0f);
    EXPECT_FLOAT_EQ(f.features(ExpertKey{3, 5}).back(), 0.0f);
    EXPECT_FLOAT_EQ(ReuseFeatures(1).features(ExpertKey{3, 2}).back(), 0.0f);  // none without a table
    // Counted online instead, over the same 10 tokens: 1 came once before (at token 1), and 2
    // followed it within 1 token that once; 5 never followed 1.
    ReuseFeatures online(1, nullptr, 1);
    for (size_t g = 0; g < 10; ++g) online.lookup(groups[g][0]);
    EXPECT_FLOAT_EQ(online.features(ExpertKey{3, 2}).back(), 0.5f);  // 1 follow over 2 uses of 1
    EXPECT_FLOAT_EQ(online.features(ExpertKey{3, 5}).back(), 0.0f);
}

TEST(LearnedEviction, HistoryOnlyModelsIgnoreTheRouterScore) {
    const RouteTraceData t = periodic_trace(1200);
    const auto groups = decode_accesses(t);
    ReuseTrainingSet set = reuse_training_set(groups, nullptr, 1, 64, 1, 1);
    for (size_t r = 0; r < set.rows.size(); r += 3) set.rows[r][kScore] = 0.25f;  // some spread to fit
    const EvictionModel m = fit_eviction_model(set, 5, false);
    ReuseFeatureRow x = set.rows[7];
    const double before = m.score(x);
    x[kScore] = 1.0f;
    EXPECT_EQ(m.score(x), before);
    EXPECT_NE(fit_eviction_model(set, 5, true).scale[kScore], 0.0f);
    EXPECT_EQ(m.scale.back(), 0.0f);  // no affinity table: the follows feature is constant 0
}

}  // namespace
}  // namespace mst
