// The trace replay against hand-made access sequences whose hit counts are known: Belady's
// bound on the textbook sequence, LRU's loop pathology, per-layer budget splits.
#include <gtest/gtest.h>

#include <vector>

#include "experts/cache_replay.h"

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

}  // namespace
}  // namespace mst
