// The attention combine fusion (docs/gpu_decode_kernels.md, "The split's combine in its
// first pass"; MST_VULKAN_ATTENTION_COMBINE_FUSION, backends/vulkan/op_attention_split.cpp):
// the split decode attention's first pass counts its finished blocks per (head, query) and
// the last one merges them, in place of attention_split_combine.comp's dispatch. Its merge
// is that shader's body (attention_split_combine.glsl), so the output must be the same bits
// with the fusion on and off: over contexts of 2, 3, 5, 17, 33 and 282 blocks, GQA, windows,
// sinks, steps of 2-4 queries whose first ones fill fewer blocks than the last (one block
// only, too), for each first pass (a subgroup per key row, an invocation per key with and
// without subgroup operations), within the CPU's bounds. A second fused call is right too
// (the counts went back to 0), a fused call takes one command and one barrier less, and decode steps replayed from one recorded command (CommandStream's replay) give
// the bits of the unfused and of the unreplayed steps. Every test runs on the device's
// memory and on a discrete GPU's path (test::VulkanMemorySuite). Without a Vulkan device
// every test is skipped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
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

using Case = test::SplitCase;
using Inputs = test::SplitInputs;
using test::describe;
using test::split_attend;
using test::split_params;

// The blocks of 32 keys of the last query (of the first, where the step's queries differ).
const Case kCases[] = {
    {1, 8, 2, 64, 64, 40, 0, false},     // 2
    {1, 8, 2, 128, 128, 70, 0, true},    // 3
    {3, 6, 3, 64, 64, 150, 0, true},     // 5 for each query
    {4, 32, 4, 128, 128, 510, 0, false}, // 17 (16 for the first two queries)
    {2, 4, 1, 64, 48, 1023, 0, true},    // 33 (32)
    {4, 4, 2, 64, 64, 31, 0, true},      // 2 (the first query's 32 keys: one block)
    {3, 4, 2, 64, 64, 62, 80, true},     // 3 (2), a window wider than the context
    {1, 8, 2, 64, 64, 700, 100, true},   // 4: a window of 100 keys
    {4, 8, 2, 64, 64, 300, 70, false},   // 3 for each query: a window of 70 keys
    {2, 5, 5, 33, 20, 200, 0, true},     // 7: rows not of whole vec4s (an invocation per key)
    {1, 4, 1, 64, 64, 9000, 0, true},    // 282: more than the merge fetches at once (SPLIT_CHUNK)
};

// Every case with the fusion off and on, for two sets of queries: the same bits, the CPU's
// values. The calls alternate queries, so that an output the fused call failed to write
// (it may land where the call before left its own) cannot pass; the second fused call
// counts on counts the first one set back to 0.
void expect_fused_equals_unfused(VulkanBackend &gpu, Backend &cpu, const char *first_pass) {
    SCOPED_TRACE(first_pass);
    for (const Case &c : kCases) {
        SCOPED_TRACE(describe(c));
        Inputs in[2] = {test::split_inputs(c, c.pos0 + c.n_tokens, 71), test::split_inputs(c, c.pos0 + c.n_tokens, 71)};
        in[1].q = random_floats(in[0].q.size(), 75);
        const uint64_t split0 = gpu.split_attention_dispatches(), fused0 = gpu.fused_attention_combines();
        std::vector<float> two[2], one[2];
        gpu.set_attention_combine_fusion(false);
        for (int i : {0, 1}) two[i] = split_attend(gpu, c, in[i], c.pos0, 0);
        EXPECT_EQ(gpu.fused_attention_combines(), fused0);
        gpu.set_attention_combine_fusion(true);
        for (int i : {0, 1}) one[i] = split_attend(gpu, c, in[i], c.pos0, 0);
        EXPECT_EQ(gpu.split_attention_dispatches() - split0, 4u) << "the case did not take the split";
        EXPECT_EQ(gpu.fused_attention_combines() - fused0, 2u);
        for (int i : {0, 1}) {
            SCOPED_TRACE(i == 0 ? "the first fused call" : "the second fused call");
            EXPECT_EQ(float_bits(one[i]), float_bits(two[i])) << "the fused combine changed the output";
            std::vector<float> want(one[i].size());
            cpu.attention(in[i].q.data(), in[i].k.data(), in[i].v.data(), want.data(),
                          split_params(c, in[i], c.pos0, 0));
            EXPECT_LT(normalized_error(one[i], want), kFloatBound);
        }
    }
}

class VulkanAttentionCombineFusion : public test::VulkanMemorySuite {};

TEST_P(VulkanAttentionCombineFusion, SubgroupRowsFirstPassGivesTheTwoDispatchesBits) {
    const uint64_t rows0 = gpu().split_rows_dispatches();
    expect_fused_equals_unfused(gpu(), cpu_, "attention_split_rows where rows are whole vec4s");
    std::printf("  %llu of %zu calls took attention_split_rows\n",
                static_cast<unsigned long long>(gpu().split_rows_dispatches() - rows0), 4 * std::size(kCases));
}

TEST_P(VulkanAttentionCombineFusion, PerKeyFirstPassGivesTheTwoDispatchesBits) {
    gpu().set_split_rows(false);
    const uint64_t rows0 = gpu().split_rows_dispatches();
    expect_fused_equals_unfused(gpu(), cpu_, "attention_split(_sg), an invocation per key");
    EXPECT_EQ(gpu().split_rows_dispatches(), rows0);
    gpu().set_split_rows(true);
}

TEST_P(VulkanAttentionCombineFusion, FirstPassWithoutSubgroupsGivesTheTwoDispatchesBits) {
    std::string why;
    const std::unique_ptr<VulkanBackend> plain = test::vulkan_backend_without_subgroups(&why);
    ASSERT_NE(plain, nullptr) << why;
    expect_fused_equals_unfused(*plain, cpu_, "attention_split, shared-memory reductions");
}

// One command and one barrier less per call (the combine's dispatch and its level).
TEST_P(VulkanAttentionCombineFusion, ACallTakesOneCommandAndOneBarrierLess) {
    const Case c = kCases[3];
    const Inputs in = test::split_inputs(c, c.pos0 + c.n_tokens, 71);
    uint64_t commands[2] = {}, barriers[2] = {};
    for (const bool on : {true, false, true}) {  // the first fills the counts (when they grow)
        gpu().set_attention_combine_fusion(on);
        const uint64_t c0 = gpu().stream().commands(), b0 = gpu().stream().barriers();
        split_attend(gpu(), c, in, c.pos0, 0);
        commands[on] = gpu().stream().commands() - c0;
        barriers[on] = gpu().stream().barriers() - b0;
    }
    EXPECT_EQ(commands[0] - commands[1], 1u) << commands[0] << " -> " << commands[1];
    EXPECT_EQ(barriers[0] - barriers[1], 1u) << barriers[0] << " -> " << barriers[1];
}

// Decode steps against a mirrored cache (cache_id), each a submission: with replay most
// re-submit one recording, whose first pass reads the position from memory and whose grid
// is a power of two of blocks, the trailing ones returning uncounted. Steps of one query
// and of three, over 2 to 6 blocks.
TEST_P(VulkanAttentionCombineFusion, ReplayedStepsGiveTheUnfusedAndUnreplayedBits) {
    CommandStream &stream = gpu().stream();
    if (!stream.replay()) GTEST_SKIP() << "replay is off on this device (no push descriptors or MST_VULKAN_REPLAY=0)";
    for (const int32_t n_tokens : {1, 3}) {
        SCOPED_TRACE("queries a step " + std::to_string(n_tokens));
        const Case c{n_tokens, 8, 2, 64, 64, 40, 0, true};
        const Inputs in = test::split_inputs(c, 200, 71);
        struct Run {
            bool fused, replay;
            std::vector<std::vector<float>> steps;
            uint64_t replayed = 0;
        } runs[] = {{true, true, {}, 0}, {false, true, {}, 0}, {true, false, {}, 0}};
        uint64_t id = 0xc0b1e00 + uint64_t(n_tokens) * 16;
        for (Run &r : runs) {
            gpu().set_attention_combine_fusion(r.fused);
            stream.set_replay(r.replay);
            const uint64_t replayed0 = stream.replayed(), fused0 = gpu().fused_attention_combines();
            for (int32_t pos0 = 40; pos0 + n_tokens <= 190; pos0 += n_tokens)
                r.steps.push_back(split_attend(gpu(), c, in, pos0, id));
            r.replayed = stream.replayed() - replayed0;
            EXPECT_EQ(gpu().fused_attention_combines() - fused0, r.fused ? r.steps.size() : 0u);
            ++id;  // a fresh mirror for the next run
        }
        stream.set_replay(true);
        gpu().set_attention_combine_fusion(true);
        std::printf("  %d queries a step: %zu steps, %llu replayed fused, %llu unfused\n", n_tokens, runs[0].steps.size(),
                    static_cast<unsigned long long>(runs[0].replayed), static_cast<unsigned long long>(runs[1].replayed));
        // The fusion replays as the two dispatches do (its counts' fill takes one recording
        // more). On a discrete GPU's path (the separate-memory case, and the device's own
        // memory on a discrete GPU: an H100 replayed none of 150 either way) these lone op
        // calls are not replayed at all; test_vulkan_replay replays whole decode steps there.
        EXPECT_GE(runs[0].replayed + 1, runs[1].replayed);
        if (!GetParam() && gpu().context().unified_memory()) {
            EXPECT_GT(runs[0].replayed, runs[0].steps.size() / 2) << "the fused steps were mostly not replayed";
        }
        EXPECT_EQ(runs[2].replayed, 0u);
        for (size_t s = 0; s < runs[0].steps.size(); ++s) {
            ASSERT_EQ(float_bits(runs[0].steps[s]), float_bits(runs[1].steps[s])) << "step " << s << ": fused vs unfused";
            ASSERT_EQ(float_bits(runs[0].steps[s]), float_bits(runs[2].steps[s])) << "step " << s << ": replayed vs not";
        }
    }
}

TEST_P(VulkanAttentionCombineFusion, OnByDefaultAndOffByEnvironment) {
    EXPECT_TRUE(gpu().attention_combine_fusion());
    const test::ScopedEnv off("MST_VULKAN_ATTENTION_COMBINE_FUSION", "0");
    VulkanBackend b(BackendOptions{}, false);
    EXPECT_FALSE(b.attention_combine_fusion());
    const Case c = kCases[0];
    split_attend(b, c, test::split_inputs(c, c.pos0 + c.n_tokens, 71), c.pos0, 0);
    EXPECT_EQ(b.split_attention_dispatches(), 1u);
    EXPECT_EQ(b.fused_attention_combines(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Memory, VulkanAttentionCombineFusion, ::testing::Values(false, true),
                         test::memory_kind_name);

#else

TEST(VulkanAttentionCombineFusion, NeedsTheVulkanBackend) { GTEST_SKIP() << "this build has no Vulkan backend"; }

#endif

}  // namespace
}  // namespace mst
