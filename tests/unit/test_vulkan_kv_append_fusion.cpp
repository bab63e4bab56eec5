// The KV append fusion (docs/gpu_decode_kernels.md, "The KV append and the router's top-k
// without levels of their own"; MST_VULKAN_KV_APPEND_FUSION, backends/vulkan/op_kv_append.cpp):
// a decode token's k norm_rope writes its rows into the attention's device KV mirror and copies
// the v rows beside them, so that the mirror's two copy_table commands and their barrier level
// go. A layer's attention half as gqa_attention_normed records it (input norm, q/k/v products,
// q/k norms, ropes, KvCache::store's copy_rows, attention with a cache id) runs over several
// decode steps, each its own batch: the attention outputs, q and the host caches must be the
// same bits with the fusion on and off (a wrong mirror row shows in every later step's
// attention), the append fused in every step but the first (no mirror yet) with it on and in
// none with it off, and all of it within the CPU's bounds. Every test runs on the device's
// memory and on a discrete GPU's path (test::VulkanMemorySuite), where a weight's first use
// records its copy: a fused count taken on fresh weights there finds the fusion off (the router
// top-k test did on an H100). Without a Vulkan device every test is skipped, saying so.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "cpu_op_fixture.h"
#include "stable_weight.h"
#include "test_weight.h"

#ifdef MST_HAVE_VULKAN
#include "vulkan_memory_suite.h"
#endif

namespace mst {
namespace {

using test::random_floats;
using test::norm_weight;
using test::stable_weight;

#ifdef MST_HAVE_VULKAN

// One layer's attention half of a small GQA model: 4 query heads on 2 kv heads.
struct Layer {
    int64_t hidden = 64, n_heads = 4, n_kv = 2, head_dim = 32, v_dim = 32, capacity = 16;  // capacity: the host caches'
    WeightView wq, wk, wv, in_norm, q_norm, k_norm;
    std::vector<float> inv_freq;
    RopeParams rope;
    explicit Layer(int64_t v_dim_) : v_dim(v_dim_) {
        wq = stable_weight(DType::BF16, n_heads * head_dim, hidden, 1);
        wk = stable_weight(DType::BF16, n_kv * head_dim, hidden, 2);
        wv = stable_weight(DType::BF16, n_kv * v_dim, hidden, 3);
        in_norm = norm_weight(hidden, 4);
        q_norm = norm_weight(head_dim, 5);
        k_norm = norm_weight(head_dim, 6);
        inv_freq.resize(size_t(head_dim / 2));
        for (size_t i = 0; i < inv_freq.size(); ++i)
            inv_freq[i] = std::pow(10000.0f, -2.0f * float(i) / float(head_dim));
        rope.rotary_dim = int32_t(head_dim);
        rope.inv_freq = inv_freq.data();
    }
};

// `steps` decode tokens from position 0, each its own batch; returns every step's q and
// attention output, then both caches. A fresh cache id per run (ids are never reused).
std::vector<float> decode(Backend &b, const Layer &l, int steps) {
    static uint64_t next_id = 0xa11ce000;
    const uint64_t cache_id = ++next_id;
    // One stride between kv heads for both caches (AttentionParams::kv_stride).
    const int64_t stride = l.capacity * std::max(l.head_dim, l.v_dim);
    std::vector<float> kc(size_t(l.n_kv * stride), 0.0f), vc(size_t(l.n_kv * stride), 0.0f);
    std::vector<float> out;
    for (int32_t pos = 0; pos < steps; ++pos) {
        std::vector<float> x = random_floats(size_t(l.hidden), 100 + uint32_t(pos), -2.0f, 2.0f);
        const std::vector<float> zero(x.size(), 0.0f);
        std::vector<float> h(x.size()), q(size_t(l.n_heads * l.head_dim)), k(size_t(l.n_kv * l.head_dim)),
            v(size_t(l.n_kv * l.v_dim)), att(size_t(l.n_heads * l.v_dim));
        {
            BackendBatch batch(b);
            b.add(x.data(), zero.data(), l.hidden);  // x pending, as the residual is in a layer
            b.rms_norm(x.data(), l.in_norm, 0.0f, 1e-6f, h.data(), 1, l.hidden);
            const WeightView ws[] = {l.wq, l.wk, l.wv};
            float *const ys[] = {q.data(), k.data(), v.data()};
            b.matmuls_one_input(ws, ys, h.data(), 1);
            b.rms_norm(q.data(), l.q_norm, 0.0f, 1e-6f, q.data(), l.n_heads, l.head_dim);
            b.rms_norm(k.data(), l.k_norm, 0.0f, 1e-6f, k.data(), l.n_kv, l.head_dim);
            b.rope(q.data(), 1, l.n_heads, l.head_dim, &pos, l.rope);
            b.rope(k.data(), 1, l.n_kv, l.head_dim, &pos, l.rope);
            for (int64_t hd = 0; hd < l.n_kv; ++hd) {  // KvCache::store
                b.copy_rows(k.data() + hd * l.head_dim, l.n_kv * l.head_dim,
                            kc.data() + hd * stride + pos * l.head_dim, 1, l.head_dim);
                b.copy_rows(v.data() + hd * l.v_dim, l.n_kv * l.v_dim,
                            vc.data() + hd * stride + pos * l.v_dim, 1, l.v_dim);
            }
            AttentionParams p;
            p.n_tokens = 1;
            p.n_heads = int32_t(l.n_heads);
            p.n_kv_heads = int32_t(l.n_kv);
            p.head_dim = int32_t(l.head_dim);
            p.v_head_dim = int32_t(l.v_dim);
            p.pos0 = pos;
            p.kv_stride = stride;
            p.scale = 1.0f / std::sqrt(float(l.head_dim));
            p.cache_id = cache_id;
            b.attention(q.data(), kc.data(), vc.data(), att.data(), p);
        }
        out.insert(out.end(), q.begin(), q.end());
        out.insert(out.end(), att.begin(), att.end());
    }
    out.insert(out.end(), kc.begin(), kc.end());
    out.insert(out.end(), vc.begin(), vc.end());
    return out;
}

class VulkanKvAppendFusion : public test::VulkanMemorySuite {
protected:
    void TearDown() override {
        if (gpus_[GetParam()]) {
            gpu().set_kv_append_fusion(true);
            gpu().set_qkv_fusion(true);
        }
    }
};

TEST_P(VulkanKvAppendFusion, KsNormRopeAppendsTheStepToTheMirrorBitForBit) {
    // v rows as wide as k's, and narrower (the v copy's own row length).
    for (const int64_t v_dim : {32, 24}) {
        const Layer l(v_dim);
        const int steps = 6;
        const std::string what = "v_dim " + std::to_string(v_dim);
        const std::vector<float> want = decode(cpu_, l, steps);
        std::vector<float> got[2];
        for (const bool on : {false, true}) {
            gpu().set_kv_append_fusion(on);
            const uint64_t before = gpu().fused_kv_appends();
            got[on] = decode(gpu(), l, steps);
            // The first step has no mirror yet: kv_mirror makes it, and the rest append.
            EXPECT_EQ(gpu().fused_kv_appends() - before, on ? uint64_t(steps - 1) : 0u)
                << what << ", fusion " << on << (on ? ": the fusion did not engage" : "");
        }
        ASSERT_EQ(got[0].size(), want.size()) << what;
        ASSERT_EQ(got[1].size(), want.size()) << what;
        for (size_t i = 0; i < want.size(); ++i)
            ASSERT_EQ(got[1][i], got[0][i]) << what << ": element " << i << " differs with the fusion on and off";
        EXPECT_LT(test::normalized_error(got[1], want), 1e-4) << what;
    }
}

TEST_P(VulkanKvAppendFusion, TheAppendTakesTwoCommandsAndOneLevelLess) {
    // q's norm_rope and q, k and v keep a dispatch each here (the q/k/v fusion's test below).
    gpu().set_qkv_fusion(false);
    const Layer l(32);
    decode(gpu(), l, 1);  // the weights' first use (a discrete GPU's copies) before counting
    uint64_t commands[2] = {}, barriers[2] = {};
    for (const bool on : {false, true}) {
        gpu().set_kv_append_fusion(on);
        // decode(3) - decode(2): one step at position 2, with a mirror to append to.
        uint64_t c[2] = {}, b[2] = {};
        for (const int steps : {2, 3}) {
            const uint64_t c0 = gpu().stream().commands(), b0 = gpu().stream().barriers();
            decode(gpu(), l, steps);
            c[steps - 2] = gpu().stream().commands() - c0;
            b[steps - 2] = gpu().stream().barriers() - b0;
        }
        commands[on] = c[1] - c[0];
        barriers[on] = b[1] - b[0];
    }
    EXPECT_EQ(commands[0] - commands[1], 2u) << commands[0] << " -> " << commands[1];
    EXPECT_EQ(barriers[0] - barriers[1], 1u) << barriers[0] << " -> " << barriers[1];
}

TEST_P(VulkanKvAppendFusion, QsNormRopeRidesInKsDispatchWithTheQkvFusion) {
    // MST_VULKAN_QKV_FUSION: q's norm_rope of the step in k's norm_rope_kv dispatch (and q, k
    // and v in one product dispatch): the same bits, one norm_rope dispatch a step where
    // there were two, three commands fewer a step and no level more.
    for (const int64_t v_dim : {32, 24}) {
        const Layer l(v_dim);
        const int steps = 6;
        const std::string what = "v_dim " + std::to_string(v_dim);
        decode(gpu(), l, 1);  // the weights' first use (a discrete GPU's copies) before counting
        std::vector<float> got[2];
        uint64_t commands[2] = {}, barriers[2] = {};
        for (const bool on : {false, true}) {
            gpu().set_qkv_fusion(on);
            const uint64_t before = gpu().fused_qk_norm_ropes(), appends = gpu().fused_kv_appends();
            const uint64_t c0 = gpu().stream().commands(), b0 = gpu().stream().barriers();
            got[on] = decode(gpu(), l, steps);
            commands[on] = gpu().stream().commands() - c0;
            barriers[on] = gpu().stream().barriers() - b0;
            EXPECT_EQ(gpu().fused_qk_norm_ropes() - before, on ? uint64_t(steps - 1) : 0u)
                << what << ", q/k/v fusion " << on << (on ? ": q's norm_rope did not ride on k's" : "");
            EXPECT_EQ(gpu().fused_kv_appends() - appends, uint64_t(steps - 1)) << what;
        }
        ASSERT_EQ(got[1].size(), got[0].size()) << what;
        for (size_t i = 0; i < got[0].size(); ++i)
            ASSERT_EQ(got[1][i], got[0][i]) << what << ": element " << i << " differs with the fusion on and off";
        EXPECT_EQ(commands[0] - commands[1], uint64_t(2 * steps + steps - 1)) << what;
        EXPECT_EQ(barriers[0], barriers[1]) << what;
    }
}

// The device mirror starts at 256 positions and doubles: the step at position 256 grows
// it. The positions it holds move over on the device, so that the step's own rows, still
// pending in the host caches, never make the batch wait (they did: a partial input, 48
// waits in a 512-token prompt's first decode token on the 48-layer shape), and every
// step's output stays the unfused path's and the CPU's.
TEST_P(VulkanKvAppendFusion, TheMirrorGrowsWithoutAWait) {
    Layer l(32);
    l.capacity = 264;
    const int steps = 260;
    const std::vector<float> want = decode(cpu_, l, steps);
    std::vector<float> got[2];
    for (const bool on : {false, true}) {
        gpu().set_kv_append_fusion(on);
        const uint64_t partial0 = gpu().stream().waits(CommandStream::WaitCause::input_overlap);
        got[on] = decode(gpu(), l, steps);
        EXPECT_EQ(gpu().stream().waits(CommandStream::WaitCause::input_overlap), partial0) << "fusion " << on;
    }
    ASSERT_EQ(got[0].size(), want.size());
    for (size_t i = 0; i < want.size(); ++i)
        ASSERT_EQ(got[1][i], got[0][i]) << "element " << i << " differs with the fusion on and off";
    EXPECT_LT(test::normalized_error(got[1], want), 1e-4);
    // Steps 256..259 (each step's q and attention output): past the growth.
    const size_t per_step = size_t(l.n_heads * (l.head_dim + l.v_dim));
    const std::vector<float> late_want(want.begin() + 256 * per_step, want.begin() + 260 * per_step),
        late_got(got[1].begin() + 256 * per_step, got[1].begin() + 260 * per_step);
    EXPECT_LT(test::normalized_error(late_got, late_want), 1e-4) << "the steps after the growth";
}

INSTANTIATE_TEST_SUITE_P(Memory, VulkanKvAppendFusion, ::testing::Values(false, true), test::memory_kind_name);

#else

TEST(VulkanKvAppendFusion, NeedsTheVulkanBackend) { GTEST_SKIP() << "this build has no Vulkan backend"; }

#endif

}  // namespace
}  // namespace mst
