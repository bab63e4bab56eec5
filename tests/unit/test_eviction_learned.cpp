// The library's "learned" cache policy (experts/eviction_learned.cpp) with its shipped
// weights, and the features it tracks online (experts/reuse_features.h): it keeps experts
// that keep coming back where LRU keeps few, evicts the same way every run, refuses
// one-off experts, works with room for one expert and with keys it never saw, and counts
// time in tokens of k lookups.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include "core/error.h"
#include "experts/cache_replay.h"
#include "experts/eviction_policies.h"
#include "experts/expert_cache.h"
#include "experts/reuse_features.h"

namespace mst {
namespace {

constexpr uint64_t kExpertBytes = 4096;

// One sparse layer (model layer 3), three experts a token: two of the hot experts 0..3 in
// turn ({0, 1}, {2, 3}, {0, 1}, ...) and one "filler" at random among 4..63 (back after a
// gap its history says nothing about).
std::vector<std::vector<ExpertKey>> periodic_groups(int64_t tokens) {
    std::mt19937 rng(11);
    std::uniform_int_distribution<int32_t> pick(4, 63);
    std::vector<std::vector<ExpertKey>> groups;
    for (int64_t t = 0; t < tokens; ++t) {
        const int32_t hot = int32_t(t % 2) * 2;
        groups.push_back({ExpertKey{3, hot}, ExpertKey{3, hot + 1}, ExpertKey{3, pick(rng)}});
    }
    return groups;
}

bool access(ExpertCache &cache, ExpertKey key) {
    if (cache.find(key)) return true;
    cache.insert(key, std::make_shared<ExpertWeights>(kExpertBytes, nullptr));
    return false;
}

TEST(EvictionLearned, IsAListedPolicy) {
    const std::vector<std::string> names = cache_policy_names();
    EXPECT_NE(std::find(names.begin(), names.end(), "learned"), names.end());
    EXPECT_STREQ(make_eviction_policy("learned")->name(), "learned");
    // The shipped model reads no router scores: the cache need not route a top M for it.
    EXPECT_FALSE(make_eviction_policy("learned")->wants_router_scores());
}

// Room for the four hot experts: LRU lets each filler push one out; the learned policy keeps
// them and refuses the fillers, as Belady does.
TEST(EvictionLearned, KeepsThePeriodicExpertsWhereLruKeepsFew) {
    const auto groups = periodic_groups(3000);
    ReplayOptions o;
    o.capacity = 4;
    const ReplayResult lru = replay_policy(groups, "lru", o), learned = replay_policy(groups, "learned", o);
    EXPECT_LT(lru.hits, 600u);
    EXPECT_GE(learned.hits, 5900u);  // of the hot experts' 6000 lookups
    EXPECT_LE(learned.inserted, 40u);
    // The same trace, the same decisions.
    const ReplayResult again = replay_policy(groups, "learned", o);
    EXPECT_EQ(again.hits, learned.hits);
    EXPECT_EQ(again.inserted, learned.inserted);
    EXPECT_EQ(again.evicted, learned.evicted);
}

// The same through ExpertCache, told k = 3, a token's lookups first and its misses inserted
// after (as ExpertStore::fetch does): once warm, each token's filler is read but not cached.
TEST(EvictionLearned, RefusesOneOffExperts) {
    ExpertCache cache(4 * kExpertBytes, "learned", 4);
    cache.set_lookups_per_token(3);
    const auto groups = periodic_groups(400);
    for (size_t t = 0; t < groups.size(); ++t) {
        std::vector<ExpertKey> missed;
        for (const ExpertKey &k : groups[t])
            if (!cache.find(k)) missed.push_back(k);
        for (const ExpertKey &k : missed) cache.insert(k, std::make_shared<ExpertWeights>(kExpertBytes, nullptr));
        if (t < 100) continue;
        for (int32_t hot = 0; hot < 4; ++hot) ASSERT_TRUE(cache.contains({3, hot})) << "token " << t;
        ASSERT_FALSE(cache.contains(groups[t][2])) << "token " << t;
    }
    EXPECT_THROW(cache.set_lookups_per_token(3), Error);  // after use
}

TEST(EvictionLearned, RoomForOneExpert) {
    ExpertCache cache(kExpertBytes, "learned", 3);
    cache.set_lookups_per_token(1);
    uint64_t state = 5;
    for (int i = 0; i < 2000; ++i) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        access(cache, {int32_t((state >> 33) % 3), int32_t((state >> 40) % 8)});
        ASSERT_LE(cache.stats().entries, 1u);
    }
    EXPECT_EQ(cache.stats().entries, 1u);
    EXPECT_EQ(cache.stats().hits + cache.stats().misses, 2000u);
}

// Keys the policy never saw looked up: inserted without a miss (a read ahead of need), an
// incoming expert of a layer never seen; its features are those of "never used".
TEST(EvictionLearned, KeysNeverLookedUp) {
    auto p = make_eviction_policy("learned");
    p->set_capacity(2);
    p->set_lookups_per_token(1);
    p->on_insert({7, 5});
    EXPECT_EQ(p->victim({9, 1}), (ExpertKey{7, 5}));
    for (int t = 0; t < 20; ++t) p->on_miss({7, 6});
    p->on_insert({7, 6});
    EXPECT_EQ(p->victim({9, 1}), (ExpertKey{7, 5}));
    EXPECT_FALSE(p->admit({9, 1}, {7, 5}));  // as cold as the victim: not above it
    p->on_evict({7, 5});
    EXPECT_EQ(p->victim({9, 1}), (ExpertKey{7, 6}));
}

TEST(ReuseFeatures, TimeIsLookupsOverK) {
    ReuseFeatures f(4);
    for (int32_t e = 0; e < 10; ++e) f.lookup({2, e});  // tokens 0, 0, 0, 0, 1, ..., 2, 2
    EXPECT_EQ(f.token(2), 2);
    EXPECT_EQ(f.token(3), -1);
    f.set_lookups_per_token(2);
    EXPECT_EQ(f.token(2), 4);  // 10 lookups of 2
}

// The online follows counts grow as higher expert ids appear, keep the ratios they had, and
// halve past 2^20 uses of an expert without changing them.
TEST(ReuseFeatures, FollowsCountedOnlineStayBoundedAndExact) {
    ReuseFeatures f(1, nullptr, 1);
    // 0, 200, 0, 200, ...: 200 follows 0 (and 0 follows 200) within one token, every time.
    for (int t = 0; t < (1 << 21) + 10; ++t) f.lookup({1, t % 2 ? 200 : 0});
    // The latest token chose 200 (the count is even): 0 followed it every time.
    EXPECT_NEAR(f.features({1, 0})[kReuseFollowsFeature], 1.0f, 1e-5f);
    EXPECT_FLOAT_EQ(f.features({1, 5})[kReuseFollowsFeature], 0.0f);
    EXPECT_FLOAT_EQ(f.features({1, 300})[kReuseFollowsFeature], 0.0f);  // beyond the ids seen
    f.lookup({1, 0});
    EXPECT_NEAR(f.features({1, 200})[kReuseFollowsFeature], 1.0f, 1e-5f);
}

}  // namespace
}  // namespace mst
