// The decode attention's latency switches (docs/gpu_decode_kernels.md, "The decode
// attention's latency"; backends/vulkan/op_attention_split.cpp):
// - MST_VULKAN_SPLIT_MERGE_ONESHOT: the fused split's last workgroup loads every block's
//   (m, l) and values at once (attention_split_combine.glsl's split_combine_oneshot, up to
//   32 blocks; more take the chunked merge): the same operations in the same order, so the
//   same bits as the chunked merge;
// - MST_VULKAN_SPLIT_BLOCK=64|128: attention_split_rows.comp in blocks of 64 or 128 keys,
//   fewer blocks to merge: another order of sums, so within the CPU's bounds and near the
//   blocks of 32; fused and unfused the same bits (one merge);
// - MST_VULKAN_SPLIT_GQA: attention_split_gqa.comp, a workgroup per KV head serving the
//   group's query heads, each head's arithmetic in attention_split_rows.comp's order: its bits.
// Over contexts of 2, 16, 32/33, 34 and 282 blocks of 32 keys (one block of 64 or 128 too),
// GQA 1, 2, 4 and 8, heads of 64 and 128, windows, sinks, steps of 2-4 queries whose first
// ones fill fewer blocks than the last; replayed decode steps in blocks of 64; the
// environment. Every test runs on the device's memory and on a discrete GPU's path
// (test::VulkanMemorySuite). Without a Vulkan device every test is skipped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "cpu_op_fixture.h"
#include "split_attention_case.h"
#include "stable_weight.h"

#ifdef MST_HAVE_VULKAN
#include "vulkan_memory_suite.h"
#endif

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN

using test::float_bits;
using test::normalized_error;
using test::random_floats;

constexpr double kFloatBound = 2e-5;  // test_vulkan_ops' attention bound against the CPU
// Blocks of 64 or 128 against blocks of 32: the same terms summed in another order.
constexpr double kReorderBound = 2e-6;

using Case = test::SplitCase;
using Inputs = test::SplitInputs;
using test::describe;
using test::split_attend;
using test::split_params;

// The blocks of 32 keys of the last query (of the first, where the step's queries differ).
const Case kCases[] = {
    {1, 4, 4, 64, 64, 32, 0, true},        // 2 (33 keys: one block of 64 or 128), GQA 1
    {1, 8, 1, 128, 128, 40, 0, true},      // 2, GQA 8
    {1, 32, 4, 128, 128, 511, 0, false},   // 16: Qwen3-30B-A3B's decode at 512 positions
    {3, 8, 8, 64, 64, 1023, 0, true},      // 33 (32, 33), GQA 1: the one-shot merge's limit
    {2, 16, 2, 128, 128, 1055, 0, false},  // 34 (33), GQA 8
    {4, 8, 2, 64, 64, 62, 0, true},        // 3 (2; in blocks of 64: 1 for the first two queries)
    {4, 8, 2, 64, 64, 300, 70, false},     // 3 for each query: a window of 70 keys
    {1, 4, 1, 128, 128, 9000, 0, true},    // 282: the chunked merge
};

class VulkanAttentionSplitLatency : public test::VulkanMemorySuite {
protected:
    void TearDown() override {  // the shared backends' defaults for the next test
        if (!gpus_[GetParam()]) return;
        gpu().set_split_block(32);
        gpu().set_split_merge_oneshot(false);
        gpu().set_split_gqa(false);
        gpu().set_attention_combine_fusion(true);
        gpu().stream().set_replay(true);
    }
};

// The one-shot merge against the chunked one, fused (its only user): the same bits, the
// CPU's values. Two sets of queries a case, alternating, so that an output the call
// failed to write cannot pass on the previous call's; in blocks of 32 and of 64.
TEST_P(VulkanAttentionSplitLatency, OneShotMergeGivesTheChunkedMergesBits) {
    for (const uint32_t block : {32u, 64u}) {
        gpu().set_split_block(block);
        for (const Case &c : kCases) {
            SCOPED_TRACE(describe(c) + " block " + std::to_string(block));
            const Inputs in[2] = {test::split_inputs(c, c.pos0 + c.n_tokens, 71),
                                  test::split_inputs(c, c.pos0 + c.n_tokens, 81)};
            const uint64_t rows0 = gpu().split_rows_dispatches(), fused0 = gpu().fused_attention_combines();
            std::vector<float> chunked[2], oneshot[2];
            gpu().set_split_merge_oneshot(false);
            for (int i : {0, 1}) chunked[i] = split_attend(gpu(), c, in[i], c.pos0, 0);
            gpu().set_split_merge_oneshot(true);
            for (int i : {0, 1}) oneshot[i] = split_attend(gpu(), c, in[i], c.pos0, 0);
            EXPECT_EQ(gpu().split_rows_dispatches() - rows0, 4u) << "the case did not take attention_split_rows";
            EXPECT_EQ(gpu().fused_attention_combines() - fused0, 4u);
            for (int i : {0, 1}) {
                EXPECT_EQ(float_bits(oneshot[i]), float_bits(chunked[i])) << "the one-shot merge changed the output";
                std::vector<float> want(oneshot[i].size());
                cpu_.attention(in[i].q.data(), in[i].k.data(), in[i].v.data(), want.data(),
                               split_params(c, in[i], c.pos0, 0));
                EXPECT_LT(normalized_error(oneshot[i], want), kFloatBound);
            }
        }
    }
}

// Blocks of 64 and 128 keys: the CPU's values, near the blocks of 32 (the same terms in
// another order), the same bits fused and unfused and with either merge.
TEST_P(VulkanAttentionSplitLatency, LargerBlocksMatchTheCpuAndTheBlocksOf32) {
    double worst = 0.0;
    for (const Case &c : kCases) {
        SCOPED_TRACE(describe(c));
        const Inputs in = test::split_inputs(c, c.pos0 + c.n_tokens, 91);
        std::vector<float> want(size_t(c.n_tokens * c.n_heads * c.v_dim));
        cpu_.attention(in.q.data(), in.k.data(), in.v.data(), want.data(), split_params(c, in, c.pos0, 0));
        gpu().set_split_block(32);
        const std::vector<float> of32 = split_attend(gpu(), c, in, c.pos0, 0);
        for (const uint32_t block : {64u, 128u}) {
            SCOPED_TRACE("block " + std::to_string(block));
            gpu().set_split_block(block);
            const uint64_t rows0 = gpu().split_rows_dispatches(), split0 = gpu().split_attention_dispatches();
            gpu().set_attention_combine_fusion(false);
            const std::vector<float> unfused = split_attend(gpu(), c, in, c.pos0, 0);
            gpu().set_attention_combine_fusion(true);
            const std::vector<float> fused = split_attend(gpu(), c, in, c.pos0, 0);
            gpu().set_split_merge_oneshot(true);
            const std::vector<float> oneshot = split_attend(gpu(), c, in, c.pos0, 0);
            gpu().set_split_merge_oneshot(false);
            EXPECT_EQ(gpu().split_rows_dispatches() - rows0, 3u);
            EXPECT_EQ(gpu().split_attention_dispatches() - split0, 3u);
            EXPECT_EQ(float_bits(fused), float_bits(unfused)) << "fused and unfused merges differ";
            EXPECT_EQ(float_bits(oneshot), float_bits(fused)) << "the one-shot merge changed the output";
            EXPECT_LT(normalized_error(fused, want), kFloatBound);
            const double e = normalized_error(fused, of32);
            EXPECT_LT(e, kReorderBound) << "far from the blocks of 32";
            worst = std::max(worst, e);
        }
    }
    std::printf("  blocks of 64 and 128 against blocks of 32: at most %.3g (normalized)\n", worst);
}

// A workgroup per KV head serving the group's query heads (attention_split_gqa.comp):
// attention_split_rows.comp's bits, fused (its heads merged a subgroup each, or one after
// another past 32 blocks) and unfused, and the CPU's values. Heads of 128 with a group of
// 16, and of 256, keep attention_split_rows.
TEST_P(VulkanAttentionSplitLatency, GqaFirstPassGivesTheRowsBits) {
    for (const bool fused : {true, false}) {
        gpu().set_attention_combine_fusion(fused);
        for (const Case &c : kCases) {
            SCOPED_TRACE(describe(c) + (fused ? " fused" : " unfused"));
            const Inputs in[2] = {test::split_inputs(c, c.pos0 + c.n_tokens, 121),
                                  test::split_inputs(c, c.pos0 + c.n_tokens, 131)};
            std::vector<float> rows[2], gqa[2];
            gpu().set_split_gqa(false);
            for (int i : {0, 1}) rows[i] = split_attend(gpu(), c, in[i], c.pos0, 0);
            const uint64_t gqa0 = gpu().split_gqa_dispatches();
            gpu().set_split_gqa(true);
            for (int i : {0, 1}) gqa[i] = split_attend(gpu(), c, in[i], c.pos0, 0);
            EXPECT_EQ(gpu().split_gqa_dispatches() - gqa0, 2u) << "the case did not take attention_split_gqa";
            for (int i : {0, 1}) {
                EXPECT_EQ(float_bits(gqa[i]), float_bits(rows[i])) << "attention_split_gqa changed the output";
                std::vector<float> want(gqa[i].size());
                cpu_.attention(in[i].q.data(), in[i].k.data(), in[i].v.data(), want.data(),
                               split_params(c, in[i], c.pos0, 0));
                EXPECT_LT(normalized_error(gqa[i], want), kFloatBound);
            }
        }
    }
    const uint64_t gqa0 = gpu().split_gqa_dispatches();
    for (const Case &c : {Case{1, 16, 1, 128, 128, 100, 0, true}, Case{1, 4, 2, 256, 256, 100, 0, false}}) {
        const Inputs in = test::split_inputs(c, c.pos0 + c.n_tokens, 141);
        std::vector<float> want(size_t(c.n_tokens * c.n_heads * c.v_dim));
        cpu_.attention(in.q.data(), in.k.data(), in.v.data(), want.data(), split_params(c, in, c.pos0, 0));
        EXPECT_LT(normalized_error(split_attend(gpu(), c, in, c.pos0, 0), want), kFloatBound) << describe(c);
    }
    EXPECT_EQ(gpu().split_gqa_dispatches(), gqa0);
}

// Decode steps in blocks of 64 against a mirrored cache, each a submission: replayed (one
// recording whose grid changes only when the context doubles), not replayed, and unfused
// give the same bits, over 1 to 3 blocks of 64, with the one-shot merge and without.
TEST_P(VulkanAttentionSplitLatency, ReplayedStepsInBlocksOf64GiveTheUnreplayedBits) {
    CommandStream &stream = gpu().stream();
    if (!stream.replay()) GTEST_SKIP() << "replay is off on this device (no push descriptors or MST_VULKAN_REPLAY=0)";
    gpu().set_split_block(64);
    for (const bool oneshot : {false, true}) {
        gpu().set_split_merge_oneshot(oneshot);
        for (const int32_t n_tokens : {1, 3}) {
            SCOPED_TRACE("queries a step " + std::to_string(n_tokens) + " one-shot " + std::to_string(oneshot));
            const Case c{n_tokens, 8, 2, 64, 64, 40, 0, true};
            const Inputs in = test::split_inputs(c, 200, 101);
            struct Run {
                bool fused, replay;
                std::vector<std::vector<float>> steps;
            } runs[] = {{true, true, {}}, {false, true, {}}, {true, false, {}}};
            uint64_t id = 0x5b10c00 + uint64_t(n_tokens) * 16 + (oneshot ? 8 : 0);
            for (Run &r : runs) {
                gpu().set_attention_combine_fusion(r.fused);
                stream.set_replay(r.replay);
                for (int32_t pos0 = 40; pos0 + n_tokens <= 190; pos0 += n_tokens)
                    r.steps.push_back(split_attend(gpu(), c, in, pos0, id));
                ++id;  // a fresh mirror for the next run
            }
            stream.set_replay(true);
            gpu().set_attention_combine_fusion(true);
            for (size_t s = 0; s < runs[0].steps.size(); ++s) {
                ASSERT_EQ(float_bits(runs[0].steps[s]), float_bits(runs[1].steps[s])) << "step " << s << ": fused vs unfused";
                ASSERT_EQ(float_bits(runs[0].steps[s]), float_bits(runs[2].steps[s])) << "step " << s << ": replayed vs not";
            }
            // The last step against the CPU reading the host cache.
            const int32_t last = 40 + int32_t(runs[0].steps.size() - 1) * n_tokens;
            std::vector<float> want(runs[0].steps.back().size());
            cpu_.attention(in.q.data(), in.k.data(), in.v.data(), want.data(), split_params(c, in, last, 0));
            EXPECT_LT(normalized_error(runs[0].steps.back(), want), kFloatBound);
        }
    }
}

// Off and in blocks of 32 by default; the environment sets the three at creation; a block size
// other than 32, 64 or 128 is an error naming the variable.
TEST_P(VulkanAttentionSplitLatency, DefaultsAndEnvironment) {
    {
        VulkanBackend b(BackendOptions{}, false);
        EXPECT_EQ(b.split_block(), 32u);
        EXPECT_FALSE(b.split_merge_oneshot());
        EXPECT_FALSE(b.split_gqa());
    }
    {
        const test::ScopedEnv gqa("MST_VULKAN_SPLIT_GQA", "1");
        VulkanBackend b(BackendOptions{}, false);
        EXPECT_TRUE(b.split_gqa());
        const Case c = kCases[2];
        const Inputs in = test::split_inputs(c, c.pos0 + c.n_tokens, 151);
        split_attend(b, c, in, c.pos0, 0);
        EXPECT_EQ(b.split_gqa_dispatches(), 1u);
    }
    {
        const test::ScopedEnv block("MST_VULKAN_SPLIT_BLOCK", "128");
        const test::ScopedEnv oneshot("MST_VULKAN_SPLIT_MERGE_ONESHOT", "1");
        VulkanBackend b(BackendOptions{}, false);
        EXPECT_EQ(b.split_block(), 128u);
        EXPECT_TRUE(b.split_merge_oneshot());
        const Case c = kCases[2];
        const Inputs in = test::split_inputs(c, c.pos0 + c.n_tokens, 111);
        std::vector<float> want(size_t(c.n_tokens * c.n_heads * c.v_dim));
        cpu_.attention(in.q.data(), in.k.data(), in.v.data(), want.data(), split_params(c, in, c.pos0, 0));
        EXPECT_LT(normalized_error(split_attend(b, c, in, c.pos0, 0), want), kFloatBound);
        EXPECT_EQ(b.split_rows_dispatches(), 1u);
    }
    for (const char *bad : {"16", "96", "256", "x"}) {
        const test::ScopedEnv block("MST_VULKAN_SPLIT_BLOCK", bad);
        try {
            VulkanBackend b(BackendOptions{}, false);
            ADD_FAILURE() << "a backend was created with MST_VULKAN_SPLIT_BLOCK=" << bad;
        } catch (const Error &e) {
            EXPECT_EQ(e.code(), MST_ERR_INVALID_ARGUMENT);
            EXPECT_NE(std::string(e.what()).find("MST_VULKAN_SPLIT_BLOCK='" + std::string(bad) + "'"), std::string::npos)
                << e.what();
        }
    }
    EXPECT_THROW(gpu().set_split_block(48), Error);
}

INSTANTIATE_TEST_SUITE_P(Memory, VulkanAttentionSplitLatency, ::testing::Values(false, true), test::memory_kind_name);

#else

TEST(VulkanAttentionSplitLatency, NeedsTheVulkanBackend) { GTEST_SKIP() << "this build has no Vulkan backend"; }

#endif

}  // namespace
}  // namespace mst
