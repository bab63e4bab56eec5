// The trace replay against hand-made access sequences whose hit counts are known: Belady's
// bound on the textbook sequence, LRU's loop pathology, per-layer budget splits.
#include <gtest/gtest.h>

#include <vector>

#include "experts/cache_replay.h"
#include "experts/eviction_policies.h"

namespace mst {
namespace {

// One sparse layer, one expert a token: the trace of an access string.
RouteTraceData single_layer(const std::vector<int32_t> &experts, int32_t n_experts) {
    RouteTraceData t = RouteTraceData::sized(n_experts, 1, 0, int64_t(experts.size()), {0});
    for (size_t i = 0; i < experts.size(); ++i) t.ids[t.at(int64_t(i), 0)] = experts[i];
    return t;
}

ReplayOptions capacity(size_t n, bool per_layer = false) {
    ReplayOptions o;
    o.capacity = n;
    o.per_layer = per_layer;
    return o;
}

// Two layers, one expert each per token: layer 0 a new expert every token, layer 1 experts
// 0 and 1 in turn, in a shared cache of 3. LRU evicts the layer-1 expert needed next (3
// others come between its uses); told layer 1's guess (right every time) when layer 0
// routes, before layer 0's miss is inserted, it evicts the one-off expert instead.
TEST(CacheReplay, PrefetchHintsKeepWhatTheNextLayerNeeds) {
    const int64_t T = 30;
    RouteTraceData t = RouteTraceData::sized(256, 1, 1, T, {0, 1});
    for (int64_t tok = 0; tok < T; ++tok) {
        t.ids[t.at(tok, 0)] = int32_t(100 + tok);
        t.ids[t.at(tok, 1)] = int32_t(tok % 2);
        t.guesses[t.guess_at(1, tok, 1)] = int32_t(tok % 2);
        t.guess_weights[t.guess_at(1, tok, 1)] = 1.0f;
    }
    const auto groups = decode_accesses(t);
    const auto hints = decode_hints(t, PrefetchRule{});
    ASSERT_EQ(hints.size(), groups.size());
    EXPECT_EQ(hints[0], (std::vector<ExpertKey>{{1, 0}}));  // at token 0's layer 0: layer 1's guess
    EXPECT_TRUE(hints[1].empty());                          // nothing after the last layer
    ReplayOptions o = capacity(3);
    const ReplayResult plain = replay_policy(groups, "lru", o);
    o.hints = &hints;
    const ReplayResult hinted = replay_policy(groups, "lru", o);
    EXPECT_EQ(hinted.hits + hinted.misses, plain.hits + plain.misses);  // hints are not lookups
    EXPECT_EQ(plain.hits, 0u);
    EXPECT_EQ(hinted.hits, uint64_t(T - 2));  // every layer-1 lookup after the first two
    EXPECT_LE(hinted.hits, replay_belady(groups, capacity(3)).hits);
}

// One layer, top-1 of the router's top-2 (weights .6 / .4), a cache of one expert. Expert 0
// is used twice, then four one-off experts are chosen each with expert 1 just below them,
// then 1 is chosen twice. lrfu-admit keeps 0 (two uses against 1's one at its first miss)
// and misses 1 twice; told the router's scores, 1 has come close four times, so it is
// cached at its first use and hit at the second. Policies that do not read scores replay
// the same with or without them.
TEST(CacheReplay, RouterScoresLetARunnerUpIn) {
    const std::vector<int32_t> chosen = {0, 0, 10, 11, 12, 13, 1, 1};
    const std::vector<int32_t> second = {5, 5, 1, 1, 1, 1, 5, 5};
    RouteTraceData t = RouteTraceData::sized(16, 1, 0, int64_t(chosen.size()), {0}, 2);
    for (size_t i = 0; i < chosen.size(); ++i) {
        t.ids[t.at(int64_t(i), 0)] = chosen[i];
        t.ranked_ids[t.ranked_at(int64_t(i), 0)] = chosen[i];
        t.ranked_ids[t.ranked_at(int64_t(i), 0) + 1] = second[i];
        t.ranked_weights[t.ranked_at(int64_t(i), 0)] = 0.6f;
        t.ranked_weights[t.ranked_at(int64_t(i), 0) + 1] = 0.4f;
    }
    const auto groups = decode_accesses(t);
    const RouterScores scores = decode_router_scores(t);
    ASSERT_EQ(scores.size(), groups.size());
    ASSERT_EQ(scores[2].size(), 2u);
    EXPECT_EQ(scores[2][1].first, (ExpertKey{0, 1}));
    EXPECT_FLOAT_EQ(scores[2][0].second + scores[2][1].second, 1.0f);  // k x share: they add up to k = 1
    EXPECT_FLOAT_EQ(scores[2][1].second, 0.4f);

    ReplayOptions o = capacity(1);
    const ReplayResult plain = replay_policy(groups, "lrfu-admit", o);
    o.scores = &scores;
    EXPECT_EQ(replay_policy(groups, "lrfu-admit", o).hits, plain.hits);  // it does not read them
    const ReplayResult soft =
        replay_policy(groups, PolicyFactory([] { return make_lrfu_policy(16.0, true, 1.0); }), o);
    EXPECT_EQ(plain.hits, 1u);  // 0's second use
    EXPECT_EQ(soft.hits, 2u);   // and 1's second use
    EXPECT_LE(soft.hits, replay_belady(groups, capacity(1)).hits);
}

TEST(CacheReplay, BeladyOnTheTextbookSequence) {
    // 1 2 3 4 1 2 5 1 2 3 4 5 with three frames: the optimum faults 7 times; LRU faults 10.
    const auto groups = decode_accesses(single_layer({1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5}, 8));
    const ReplayResult best = replay_belady(groups, capacity(3));
    EXPECT_EQ(best.misses, 7u);
    EXPECT_EQ(best.hits, 5u);
    const ReplayResult lru = replay_policy(groups, "lru", capacity(3));
    EXPECT_EQ(lru.misses, 10u);
    EXPECT_EQ(lru.hits, 2u);
}

TEST(CacheReplay, BeladyBypassesWhatIsNeededLast) {
    // A B C A B D A B in two frames: C and D are never used again, so the optimum keeps A
    // and B and hits four times, where LRU (a loop one larger than the cache) never hits.
    const auto groups = decode_accesses(single_layer({0, 1, 2, 0, 1, 3, 0, 1}, 4));
    EXPECT_EQ(replay_belady(groups, capacity(2)).hits, 4u);
    EXPECT_EQ(replay_policy(groups, "lru", capacity(2)).hits, 0u);
}

TEST(CacheReplay, BeladyBoundsEveryPolicy) {
    // A skewed pseudo-random string: no policy beats the bound, and it beats none.
    std::vector<int32_t> s;
    uint32_t x = 12345;
    for (int i = 0; i < 4000; ++i) {
        x = x * 1664525u + 1013904223u;
        s.push_back(int32_t((x >> 8) % 16 < 8 ? (x >> 16) % 4 : (x >> 16) % 32));
    }
    const auto groups = decode_accesses(single_layer(s, 32));
    for (size_t cap : {2u, 5u, 10u, 20u}) {
        const double bound = replay_belady(groups, capacity(cap)).hit_rate();
        for (const char *p : {"lru", "lfu", "arc", "none"})
            EXPECT_LE(replay_policy(groups, p, capacity(cap)).hit_rate(), bound + 1e-12) << p << " " << cap;
        EXPECT_GT(bound, 0.0);
    }
}

TEST(CacheReplay, NoneAndZeroCapacityNeverHit) {
    const auto groups = decode_accesses(single_layer({0, 0, 0, 0}, 2));
    EXPECT_EQ(replay_policy(groups, "none", capacity(4)).hits, 0u);
    EXPECT_EQ(replay_policy(groups, "lru", capacity(0)).hits, 0u);
    EXPECT_EQ(replay_belady(groups, capacity(0)).hits, 0u);
    EXPECT_EQ(replay_policy(groups, "lru", capacity(1)).hits, 3u);
}

TEST(CacheReplay, DecodeOrderGroupsTokenLayerWithoutDuplicates) {
    RouteTraceData t = RouteTraceData::sized(8, 3, 0, 2, {1, 3});
    const std::vector<int32_t> ids = {5, 2, 5, /**/ 7, -1, 0, /**/ 1, 1, 1, /**/ 6, 4, 3};
    std::copy(ids.begin(), ids.end(), t.ids.begin());
    const auto g = decode_accesses(t);
    ASSERT_EQ(g.size(), 4u);
    EXPECT_EQ(g[0], (std::vector<ExpertKey>{{1, 2}, {1, 5}}));
    EXPECT_EQ(g[1], (std::vector<ExpertKey>{{3, 0}, {3, 7}}));
    EXPECT_EQ(g[2], (std::vector<ExpertKey>{{1, 1}}));
    EXPECT_EQ(g[3], (std::vector<ExpertKey>{{3, 3}, {3, 4}, {3, 6}}));
}

TEST(CacheReplay, PerLayerBudgetsSplitTheCapacity) {
    // Layer 0 alternates between two experts, layer 1 between two others. Three experts
    // shared by LRU: a loop of four keys, never a hit. Split per layer: layer 0 gets two
    // (every token after the first two hits), layer 1 one (LRU never hits).
    const int64_t T = 10;
    RouteTraceData t = RouteTraceData::sized(4, 1, 0, T, {0, 1});
    for (int64_t tok = 0; tok < T; ++tok) {
        t.ids[t.at(tok, 0)] = int32_t(tok % 2);
        t.ids[t.at(tok, 1)] = int32_t(2 + tok % 2);
    }
    const auto groups = decode_accesses(t);
    EXPECT_EQ(replay_policy(groups, "lru", capacity(3)).hits, 0u);
    EXPECT_EQ(replay_policy(groups, "lru", capacity(3, true)).hits, uint64_t(T - 2));
    // The optimum also keeps one of layer 1's two experts for good: half its tokens hit.
    EXPECT_EQ(replay_belady(groups, capacity(3, true)).hits, uint64_t(T - 2 + (T - 2) / 2));
}

TEST(CacheReplay, SecondTouchKeepsOneShotExpertsOut) {
    // 0 and 1 are cached and keep coming back between one-shot experts 2..7. LRU lets every
    // one-shot expert evict one of them and never hits again; with second-touch admission
    // the one-shot experts are read but not cached, and every later 0 and 1 hits.
    const auto groups = decode_accesses(single_layer({0, 1, 0, 1, 2, 0, 3, 1, 4, 0, 5, 1, 6, 0, 7, 1}, 8));
    const ReplayResult lru = replay_policy(groups, "lru", capacity(2));
    EXPECT_EQ(lru.hits, 2u);
    EXPECT_EQ(lru.evicted_unused, 10u);  // of 12 evictions, all but the first two (0, 1 had hit)
    const ReplayResult second = replay_policy(groups, "lru-2touch", capacity(2));
    EXPECT_EQ(second.hits, 8u);
    EXPECT_EQ(second.not_kept, 0u);   // no refused expert came back
    EXPECT_EQ(second.inserted, 2u);   // only 0 and 1 were ever cached
    EXPECT_EQ(replay_policy(groups, "lrfu-2touch", capacity(2)).hits, 8u);
}

TEST(CacheReplay, SecondTouchAdmitsAnExpertMissedTwiceWithinTheWindow) {
    // The working set moves from {0, 1} to {2, 3}: each of 2 and 3 is refused once, then
    // admitted at its second miss, which came within the last capacity misses.
    const auto groups = decode_accesses(single_layer({0, 1, 0, 1, 2, 3, 2, 3, 2, 3}, 4));
    EXPECT_EQ(replay_policy(groups, "lru", capacity(2)).hits, 6u);
    const ReplayResult second = replay_policy(groups, "lru-2touch", capacity(2));
    EXPECT_EQ(second.hits, 4u);
    EXPECT_EQ(second.not_kept, 2u);  // the second misses of 2 and 3, refused at their first
}

TEST(CacheReplay, MissesAreSplitByCause) {
    // The textbook sequence with three frames. Belady: 5 first uses, and 2 more misses: 3 and
    // 4 come back (at accesses 10, 11) after being bypassed or evicted.
    const auto groups = decode_accesses(single_layer({1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5}, 8));
    const ReplayResult best = replay_belady(groups, capacity(3));
    EXPECT_EQ(best.first_use, 5u);
    EXPECT_EQ(best.first_use + best.not_kept + best.evicted, best.misses);
    EXPECT_EQ(best.evicted_unused, 0u);  // the optimum never caches what it evicts unused
    // LRU: 5 first uses, every other miss an eviction (it caches every miss).
    const ReplayResult lru = replay_policy(groups, "lru", capacity(3));
    EXPECT_EQ(lru.first_use, 5u);
    EXPECT_EQ(lru.not_kept, 0u);
    EXPECT_EQ(lru.evicted, 5u);
    EXPECT_EQ(lru.inserted, 10u);
}

TEST(CacheReplay, NextTokenHintsAreTheSameLayersNextGroup) {
    RouteTraceData t = RouteTraceData::sized(8, 1, 0, 3, {0, 1});
    const std::vector<int32_t> ids = {1, 2, /**/ 3, 4, /**/ 5, 6};
    std::copy(ids.begin(), ids.end(), t.ids.begin());
    const auto groups = decode_accesses(t);
    const auto hints = next_token_hints(groups, t.n_slots());
    ASSERT_EQ(hints.size(), 6u);
    EXPECT_EQ(hints[0], (std::vector<ExpertKey>{{0, 3}}));
    EXPECT_EQ(hints[3], (std::vector<ExpertKey>{{1, 6}}));
    EXPECT_TRUE(hints[4].empty());
    EXPECT_TRUE(hints[5].empty());
}

TEST(CacheReplay, ReuseSizedBudgetsGoWhereTheReuseIs) {
    // Layer 0 loops over 4 experts (LRU hits all with 4, none with fewer); layer 1 uses one
    // expert throughout (1 is enough); layer 2 never repeats (room there is wasted). With 5
    // experts to share, the even split (2, 2, 1) hits only layer 1; sized by reuse: 4, 1, 0.
    const int64_t T = 40;
    RouteTraceData t = RouteTraceData::sized(64, 1, 0, T, {0, 1, 2});
    for (int64_t tok = 0; tok < T; ++tok) {
        t.ids[t.at(tok, 0)] = int32_t(tok % 4);
        t.ids[t.at(tok, 1)] = 7;
        t.ids[t.at(tok, 2)] = int32_t(20 + tok);
    }
    const auto groups = decode_accesses(t);
    const auto sized = reuse_sized_budgets(groups, 5);
    EXPECT_EQ(sized, (std::map<int32_t, size_t>{{0, 4}, {1, 1}, {2, 0}}));
    ReplayOptions o;
    o.layer_capacity = sized;
    EXPECT_EQ(replay_policy(groups, "lru", o).hits, uint64_t((T - 4) + (T - 1)));
    EXPECT_EQ(replay_policy(groups, "lru", capacity(5, true)).hits, uint64_t(T - 1));
    EXPECT_EQ(replay_belady(groups, o).hits, uint64_t((T - 4) + (T - 1)));
}

}  // namespace
}  // namespace mst
