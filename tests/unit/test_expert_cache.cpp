// The expert cache and its eviction policies: each policy's ordering on hand-made access
// patterns, the byte budget, per-layer statistics, and (on the reference checkpoints)
// logits bitwise identical under every policy, budget and with prefetch.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "experts/expert_cache.h"
#include "moestream.hpp"
#include "test_paths.h"

namespace {

using mst::ExpertCache;
using mst::ExpertKey;

constexpr uint64_t kExpertBytes = 4096;

mst::ExpertHandle make_expert() { return std::make_shared<mst::ExpertWeights>(kExpertBytes, nullptr); }

// Look `key` up; on a miss, insert it as a read would. Returns whether it hit.
bool access(ExpertCache &cache, ExpertKey key) {
    if (cache.find(key)) return true;
    cache.insert(key, make_expert());
    return false;
}

bool cached(ExpertCache &cache, ExpertKey key) { return cache.contains(key); }

TEST(ExpertCachePolicy, LruEvictsLeastRecentlyUsed) {
    ExpertCache cache(3 * kExpertBytes, "lru", 1);
    for (int e : {0, 1, 2}) access(cache, {0, e});
    access(cache, {0, 0});  // 0 becomes most recent; 1 is now least recent
    access(cache, {0, 3});
    EXPECT_TRUE(cached(cache, {0, 0}));
    EXPECT_FALSE(cached(cache, {0, 1}));
    EXPECT_TRUE(cached(cache, {0, 2}));
    EXPECT_TRUE(cached(cache, {0, 3}));
    EXPECT_EQ(cache.stats().evictions, 1u);
}

TEST(ExpertCachePolicy, LfuAndLrfuKeepFrequentExperts) {
    for (const char *policy : {"lfu", "lrfu"}) {
        ExpertCache cache(3 * kExpertBytes, policy, 1);
        for (int i = 0; i < 5; ++i) access(cache, {0, 0});
        for (int i = 0; i < 3; ++i) access(cache, {0, 1});
        access(cache, {0, 2});
        // Evicts 2: for lfu the least frequent (LRU would also have kept 2); for lrfu used
        // once, as 3 was, but longer ago.
        access(cache, {0, 3});
        access(cache, {0, 4});  // evicts 3
        EXPECT_TRUE(cached(cache, {0, 0})) << policy;
        EXPECT_TRUE(cached(cache, {0, 1})) << policy;
        EXPECT_FALSE(cached(cache, {0, 2})) << policy;
        EXPECT_FALSE(cached(cache, {0, 3})) << policy;
        EXPECT_TRUE(cached(cache, {0, 4})) << policy;
    }
}

TEST(ExpertCachePolicy, LfuAgingAndLrfuDecayLetOldFavouritesGo) {
    // Capacity 2: lfu halves its counts every 64 accesses, lrfu its scores every 32.
    for (const char *policy : {"lfu", "lrfu"}) {
        ExpertCache cache(2 * kExpertBytes, policy, 1);
        for (int i = 0; i < 20; ++i) access(cache, {0, 0});
        // A long new phase: experts 1 and 2 alternate. Under lrfu the one not resident is at
        // first evicted in turn (0 still scores higher), but their scores build up while 0's
        // decays; under lfu halving makes 0's old count fade. Either way 0 goes.
        for (int i = 0; i < 200; ++i) access(cache, {0, 1 + i % 2});
        EXPECT_FALSE(cached(cache, {0, 0})) << policy;
        EXPECT_TRUE(cached(cache, {0, 1})) << policy;
        EXPECT_TRUE(cached(cache, {0, 2})) << policy;
    }
}

TEST(ExpertCachePolicy, LrfuAdmitKeepsFrequentExpertsFromOneOffs) {
    for (const char *policy : {"lrfu", "lrfu-admit"}) {
        ExpertCache cache(2 * kExpertBytes, policy, 1);
        for (int i = 0; i < 3; ++i) {
            access(cache, {0, 0});
            access(cache, {0, 1});
        }
        // A stream of experts used once each: plain lrfu lets every one in (evicting 0 or 1),
        // admission control keeps the two that keep coming back.
        for (int e = 2; e < 6; ++e) access(cache, {0, e});
        const bool admit = std::string(policy) == "lrfu-admit";
        EXPECT_EQ(cached(cache, {0, 0}) && cached(cache, {0, 1}), admit) << policy;
        EXPECT_EQ(cached(cache, {0, 5}), !admit) << policy;
        EXPECT_EQ(access(cache, {0, 0}) && access(cache, {0, 1}), admit) << policy;
    }
}

TEST(ExpertCachePolicy, SecondTouchCachesOnlyWhatComesBackSoon) {
    for (const char *policy : {"lru-2touch", "lrfu-2touch"}) {
        ExpertCache cache(2 * kExpertBytes, policy, 1);
        access(cache, {0, 0});
        access(cache, {0, 1});  // a cache not yet full takes every miss
        // One-off experts between uses of 0 and 1: each is read, none is cached.
        for (int e = 2; e < 6; ++e) {
            EXPECT_FALSE(access(cache, {0, e})) << policy;
            EXPECT_FALSE(cached(cache, {0, e})) << policy;
            EXPECT_TRUE(access(cache, {0, e % 2})) << policy;
        }
        // An expert missed again within the last 2 misses is cached at its second miss.
        EXPECT_FALSE(access(cache, {0, 7}));
        EXPECT_FALSE(access(cache, {0, 7}));
        EXPECT_TRUE(cached(cache, {0, 7})) << policy;
    }
}

TEST(ExpertCachePolicy, ArcResistsAScan) {
    // A hot set used twice (so it lives in T2), then a long one-time scan: ARC evicts the
    // scan's experts (T1) and keeps the hot ones; LRU loses them all.
    auto run = [](const char *policy) {
        ExpertCache cache(4 * kExpertBytes, policy, 1);
        for (int round = 0; round < 2; ++round)
            for (int e : {0, 1}) access(cache, {0, e});
        for (int e = 100; e < 120; ++e) access(cache, {0, e});
        return int(cached(cache, {0, 0})) + int(cached(cache, {0, 1}));
    };
    EXPECT_EQ(run("arc"), 2);
    EXPECT_EQ(run("lru"), 0);
}

TEST(ExpertCachePolicy, NoneKeepsNothing) {
    ExpertCache cache(1ull << 30, "none", 2);
    EXPECT_FALSE(access(cache, {1, 3}));
    EXPECT_FALSE(access(cache, {1, 3}));
    EXPECT_EQ(cache.stats().bytes_held, 0u);
    EXPECT_EQ(cache.budget(), 0u);
}

TEST(ExpertCachePolicy, BudgetAndPerLayerStatistics) {
    for (const char *policy : {"lru", "lfu", "arc", "lrfu", "lrfu-admit", "lru-2touch", "lrfu-2touch", "learned"}) {
        ExpertCache cache(5 * kExpertBytes + 100, policy, 3);
        uint64_t state = 7;
        for (int i = 0; i < 500; ++i) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            access(cache, {int32_t((state >> 33) % 3), int32_t((state >> 40) % 6)});
            ASSERT_LE(cache.stats().bytes_held, cache.budget()) << policy;
        }
        const mst::ExpertCacheStats total = cache.stats();
        uint64_t hits = 0, misses = 0, evictions = 0, bytes = 0;
        for (int layer = 0; layer < 3; ++layer) {
            const mst::ExpertCacheStats s = cache.layer_stats(layer);
            hits += s.hits;
            misses += s.misses;
            evictions += s.evictions;
            bytes += s.bytes_read;
        }
        EXPECT_EQ(hits, total.hits) << policy;
        EXPECT_EQ(misses, total.misses) << policy;
        EXPECT_EQ(evictions, total.evictions) << policy;
        EXPECT_EQ(bytes, total.bytes_read) << policy;
        EXPECT_EQ(total.hits + total.misses, 500u) << policy;
        EXPECT_EQ(total.entries, 5u) << policy;
    }
}

TEST(ExpertCachePolicy, UnknownPolicyIsRejected) {
    mst_model_params p = mst::model_params();
    p.cache_policy = "mru";
    mst_model *model = nullptr;
    EXPECT_EQ(mst_model_load(mst::test::data_path("qwen3_moe_tiny").c_str(), &p, &model), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("mru"), std::string::npos);
}

// The same logits, bit for bit, whatever the policy, budget or prefetch.
struct Setting {
    const char *policy;
    uint64_t budget;
    int prefetch;  // MoE layers read ahead; 0 = off
};

std::vector<float> generate_logits(const std::string &dir, const Setting &s, mst_cache_stats *stats_out) {
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    p.cache_policy = s.policy;
    p.expert_cache_bytes = s.budget;
    p.prefetch = s.prefetch;
    const mst::ModelHandle model(dir, p);
    mst::SessionHandle session(model);
    std::vector<float> all;
    session.eval({1, 87, 85, 259, 201, 39, 408, 262, 413});
    for (int step = 0; step < 12; ++step) {
        const std::vector<float> logits = session.logits();
        all.insert(all.end(), logits.begin(), logits.end());
        mst_sampler_params greedy = mst::sampler_params();
        greedy.temperature = 0;
        session.eval({session.sample(greedy)});
    }
    stats_out->struct_size = sizeof *stats_out;
    mst::check(mst_model_get_cache_stats(model.get(), -1, stats_out));
    return all;
}

TEST(ExpertCacheBitwise, LogitsIdenticalAcrossPoliciesBudgetsAndPrefetch) {
    for (const char *dataset :
         {"qwen3_moe_tiny", "qwen3_moe_sharded_legacy", "qwen3_moe_mixed_dtype", "qwen3_5_moe_tiny", "qwen3_next_tiny",
          "deepseek_v3_tiny", "deepseek_v3_fp8", "kimi_k2_tiny", "mixtral_tiny", "gpt_oss_tiny", "gpt_oss_mxfp4"}) {
        const std::string dir = mst::test::data_path(dataset);
        mst_cache_stats base_stats{};
        const std::vector<float> expected = generate_logits(dir, {"lru", 1ull << 30, 0}, &base_stats);
        // With one MoE layer there is no next layer to predict.
        const bool can_predict = mst::ModelHandle(dir).info().n_moe_layers > 1;
        for (const Setting &s : std::vector<Setting>{{"none", 0, 0}, {"lru", 20000, 0}, {"lfu", 20000, 0},
                                                     {"arc", 20000, 0}, {"lru", 0, 1}, {"arc", 40000, 1},
                                                     {"lfu", 20000, 3}, {"lrfu", 20000, 1},
                                                     {"lrfu-admit", 20000, 1}, {"learned", 20000, 1}}) {
            mst_cache_stats stats{};
            EXPECT_EQ(generate_logits(dir, s, &stats), expected)
                << dataset << " policy " << s.policy << " budget " << s.budget << " prefetch " << s.prefetch;
            EXPECT_LE(stats.bytes_held, s.budget);
            if (s.prefetch) {
                if (can_predict) {
                    EXPECT_GT(stats.prefetch_predicted, 0u) << dataset;
                }
                EXPECT_LE(stats.prefetch_used, stats.prefetch_predicted);
                EXPECT_LE(stats.prefetch_used, stats.prefetch_needed);
            } else {
                EXPECT_EQ(stats.prefetch_predicted, 0u);
            }
        }
    }
}

TEST(ExpertCachePrefetch, NegativeDepthIsRejected) {
    mst_model_params p = mst::model_params();
    p.prefetch = -1;
    mst_model *model = nullptr;
    EXPECT_EQ(mst_model_load(mst::test::data_path("qwen3_moe_tiny").c_str(), &p, &model), MST_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(model, nullptr);
    EXPECT_NE(std::string(mst_last_error()).find("prefetch"), std::string::npos) << mst_last_error();
}

TEST(ExpertCachePrefetch, MinShareAboveOneIsRejected) {
    mst_model_params p = mst::model_params();
    p.prefetch = 1;
    p.prefetch_min_share = 1.5f;
    mst_model *model = nullptr;
    EXPECT_EQ(mst_model_load(mst::test::data_path("qwen3_moe_trained").c_str(), &p, &model), MST_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(model, nullptr);
    EXPECT_NE(std::string(mst_last_error()).find("prefetch_min_share"), std::string::npos) << mst_last_error();
}

// The confidence bar reads fewer guesses than reading all k, and those it reads are chosen
// more often (the trained model, whose router weights mean something).
TEST(ExpertCachePrefetch, MinShareTradesRecallForPrecision) {
    auto run = [](float min_share) {
        mst_model_params p = mst::model_params();
        p.backend = "cpu";
        p.prefetch = 1;
        p.prefetch_min_share = min_share;
        const mst::ModelHandle model(mst::test::data_path("qwen3_moe_trained"), p);
        mst::SessionHandle session(model);
        session.eval({1, 87, 85, 259, 201, 39, 408, 262, 413});
        mst_sampler_params greedy = mst::sampler_params();
        greedy.temperature = 0;
        for (int step = 0; step < 24; ++step) session.eval({session.sample(greedy)});
        mst_cache_stats stats{};
        stats.struct_size = sizeof stats;
        mst::check(mst_model_get_cache_stats(model.get(), -1, &stats));
        return stats;
    };
    const mst_cache_stats all = run(0.0f), sure = run(-1.0f);  // -1: the default rule
    EXPECT_EQ(all.prefetch_predicted, 24u * 5u * 8u);  // 24 decode steps, 5 next layers, k = 8
    EXPECT_GT(sure.prefetch_predicted, 0u);
    EXPECT_LT(sure.prefetch_predicted, all.prefetch_predicted);
    EXPECT_GT(double(sure.prefetch_used) / double(sure.prefetch_predicted),
              double(all.prefetch_used) / double(all.prefetch_predicted));
}

}  // namespace
