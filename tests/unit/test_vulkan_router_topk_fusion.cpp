// The router-top-k fusion (docs/gpu_decode_kernels.md, "The KV append and the router's top-k
// without levels of their own"; MST_VULKAN_ROUTER_TOPK_FUSION, backends/vulkan/op_routing.cpp):
// one token's router product (the post-attention norm folded in) and softmax_topk as one
// dispatch, the product's last workgroup to finish ranking the experts. A MoE layer's
// routing as the model records it (the residual pending, rms_norm, the router matmul,
// DeviceRouting::softmax_topk, then an expert product reading the normed x) runs with the
// fusion on and off: logits, ids, weights and the normed x must be the same bits (the
// fused kernel is softmax_topk_rank.comp's body over the same logits), the ids and weights
// those the CPU's route_softmax_topk picks from the device's logits, the logits within the
// CPU backend's bounds. Two layers in one batch check that the finished-workgroup counter
// is back at 0 for the next dispatch. Every test runs on the device's memory and on a
// discrete GPU's path (test::VulkanMemorySuite): there a weight's first use records its
// copy, and with it the deferred norm, so the weights are made resident first (on an H100
// the fused run came first on fresh weights and never fused). Where the backend says its
// settings cannot fuse (VulkanBackend::router_topk_fusion_fits), the tests skip saying why;
// elsewhere a fusion that did not engage fails. Without a Vulkan device every test is skipped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/device_routing.h"
#include "cpu_op_fixture.h"
#include "router/softmax_topk.h"
#include "stable_weight.h"
#include "test_weight.h"

#ifdef MST_HAVE_VULKAN
#include "vulkan_memory_suite.h"
#endif

namespace mst {
namespace {

using test::random_floats;
using test::float_bits;
using test::norm_weight;
using test::stable_weight;

#ifdef MST_HAVE_VULKAN

constexpr double kFloatBound = 2e-5;  // test_vulkan_matvec's bounds
constexpr double kQuantBound = 3e-4;
const DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8, DType::Q4};

// What one run gives: per layer the normed x, the logits, ids, weights, an expert product
// of the normed x and an op reading the weights (as the experts' products read them).
struct Routed {
    std::vector<float> h, logits, weights, expert, weighted;
    std::vector<int32_t> ids;
};

struct MoeRouting {
    int64_t cols;
    int32_t experts, k;
    bool renormalize;
    WeightView router[2], gate, norm;
};

// The layers' routing in one batch (the CPU: the same ops, then route_softmax_topk).
std::vector<Routed> route(Backend &b, const MoeRouting &m, int layers) {
    std::vector<Routed> out(static_cast<size_t>(layers));
    std::vector<float> x = random_floats(size_t(m.cols), 7, -2.0f, 2.0f);
    const std::vector<float> d = random_floats(size_t(m.cols), 8);
    DeviceRouting *routing = device_routing(b);
    {
        BackendBatch batch(b);
        for (int l = 0; l < layers; ++l) {
            Routed &r = out[size_t(l)];
            r.h.resize(size_t(m.cols));
            r.logits.resize(size_t(m.experts));
            r.ids.resize(size_t(m.k));
            r.weights.resize(size_t(m.k));
            r.expert.resize(size_t(m.gate.rows));
            r.weighted.resize(size_t(m.k));
            b.add(x.data(), d.data(), m.cols);  // the residual, pending
            b.rms_norm(x.data(), m.norm, 0.0f, 1e-6f, r.h.data(), 1, m.cols);
            b.matmul(m.router[l], r.h.data(), r.logits.data(), 1);
            if (routing) routing->softmax_topk(r.logits.data(), 1, m.experts, m.k, m.renormalize, r.ids.data(), r.weights.data());
            else route_softmax_topk(r.logits.data(), 1, m.experts, m.k, m.renormalize, r.ids.data(), r.weights.data());
            b.matmul(m.gate, r.h.data(), r.expert.data(), 1);  // the experts read the normed x
            b.silu_mul(r.weights.data(), r.weights.data(), r.weighted.data(), m.k);  // and the weights
        }
    }
    return out;
}

// The weights on the device before the comparison: on a discrete GPU a weight's first use
// records its copy, which records the batch's deferred norm before the router product can
// take it. Products of another x, outside a batch: they write no ids or weights the fused
// run could be mistaken for.
void make_resident(Backend &b, const MoeRouting &m) {
    const std::vector<float> x = random_floats(size_t(m.cols), 9);
    std::vector<float> h(static_cast<size_t>(m.cols)), y(static_cast<size_t>(std::max<int64_t>(m.experts, m.gate.rows)));
    b.rms_norm(x.data(), m.norm, 0.0f, 1e-6f, h.data(), 1, m.cols);
    for (const WeightView &w : {m.router[0], m.router[1], m.gate}) b.matmul(w, x.data(), y.data(), 1);
}

class VulkanRouterTopkFusion : public test::VulkanMemorySuite {
protected:
    void SetUp() override {
        VulkanMemorySuite::SetUp();
        if (IsSkipped()) return;
        gpu().set_router_topk_fusion(true);
        std::string why;
        if (!gpu().router_topk_fusion_fits(&why)) GTEST_SKIP() << "the router's top-k cannot fuse here: " << why;
    }
    void TearDown() override {
        if (gpus_[GetParam()]) {
            gpu().set_router_topk_fusion(true);
            std::string why;
            gpu().set_matvec_tuning(gpu().default_matvec_tuning(), why);
            gpu().set_norm_x_shared(false);
            gpu().set_router_ahead(true);
        }
    }
    void check_same_routing(DType t, int32_t E, int32_t k, bool renormalize, uint32_t seed, int64_t cols = 256);
};

// One router of E experts (type t, cols wide), top k, over two layers with the fusion on and
// off: the same logits, ids, weights and what reads them, bit for bit; the CPU's ids of the
// device's logits, and its logits within the bound.
void VulkanRouterTopkFusion::check_same_routing(DType t, int32_t E, int32_t k, bool renormalize, uint32_t seed,
                                                int64_t cols) {
    const MoeRouting m{cols, E, k, renormalize,
                       {stable_weight(t, E, cols, seed), stable_weight(t, E, cols, seed + 1)},
                       stable_weight(DType::BF16, 24, cols, seed + 2), norm_weight(cols, seed + 3)};
    const std::string what = std::string(dtype_name(t)) + " E=" + std::to_string(E) + " k=" + std::to_string(k) +
                             " renormalize=" + std::to_string(renormalize) + " cols=" + std::to_string(cols) +
                             " shape " + gpu().matvec_tuning().dense.name() +
                             " ahead=" + std::to_string(gpu().router_ahead());
    const std::vector<Routed> want = route(cpu_, m, 2);
    make_resident(gpu(), m);
    std::vector<Routed> got[2];
    // On first: its results' device scratch then last held another case's
    // (a dispatch that failed to write the ids would not pass for the
    // unfused run's, at the same offsets).
    for (const bool on : {true, false}) {
        gpu().set_router_topk_fusion(on);
        const uint64_t before = gpu().fused_router_topks();
        got[on] = route(gpu(), m, 2);
        EXPECT_EQ(gpu().fused_router_topks() - before, on ? 2u : 0u)
            << what << ", fusion " << on << (on ? ": the fusion did not engage" : "");
    }
    for (size_t l = 0; l < 2; ++l) {
        const Routed &a = got[0][l], &b = got[1][l];
        const std::string at = what + " layer " + std::to_string(l);
        EXPECT_EQ(float_bits(b.logits), float_bits(a.logits)) << at;
        EXPECT_EQ(b.ids, a.ids) << at;
        EXPECT_EQ(float_bits(b.weights), float_bits(a.weights)) << at;
        EXPECT_EQ(float_bits(b.h), float_bits(a.h)) << at;
        EXPECT_EQ(float_bits(b.expert), float_bits(a.expert)) << at;
        EXPECT_EQ(float_bits(b.weighted), float_bits(a.weighted)) << at;
        // The top k of the device's own logits, as the CPU picks them.
        std::vector<int32_t> ids(static_cast<size_t>(k));
        std::vector<float> w(static_cast<size_t>(k));
        route_softmax_topk(b.logits.data(), 1, E, k, renormalize, ids.data(), w.data());
        EXPECT_EQ(b.ids, ids) << at;
        for (size_t i = 0; i < w.size(); ++i)
            EXPECT_NEAR(b.weights[i], w[i], 2e-6f * std::max(1.0f, w[i])) << at;
        EXPECT_LT(test::normalized_error(b.logits, want[l].logits),
                  dtype_is_quantized(t) ? kQuantBound : kFloatBound)
            << at;
    }
}

TEST_P(VulkanRouterTopkFusion, RouterAndTopkInOneDispatchEqualTheTwoBitForBit) {
    int case_no = 0;
    for (const DType t : kTypes)
        for (const int32_t E : {7, 128, 1024})
            for (const int32_t k : {1, 8})
                for (const bool renormalize : {false, true})
                    if (k <= E) check_same_routing(t, E, k, renormalize, uint32_t(100 * ++case_no));
}

TEST_P(VulkanRouterTopkFusion, SeveralRowsALaneKeepTheBits) {
    // The dense family at several rows a lane (dense=LxRxP, 128 invocations as the ranking
    // needs): fewer workgroups count themselves done, and the last one's lanes may take
    // rows past the last expert (7 and 1024 experts). The last shape with x normalised in
    // shared memory too (MST_VULKAN_NORM_X_SHARED=1).
    std::string why;
    int case_no = 0;
    for (const MatvecShape s : {MatvecShape{32, 4, 4}, MatvecShape{16, 8, 2}, MatvecShape{128, 1, 8}}) {
        gpu().set_norm_x_shared(s.per_lane == 8);
        ASSERT_TRUE(gpu().set_matvec_tuning(MatvecTuning::at(s), why)) << s.name() << ": " << why;
        gpu().set_router_topk_fusion(true);  // the last case left it off
        ASSERT_TRUE(gpu().router_topk_fusion_fits(&why)) << s.name() << ": " << why;
        for (const DType t : {DType::BF16, DType::Q8, DType::Q4})
            for (const int32_t E : {7, 128, 1024})
                check_same_routing(t, E, std::min(E, 8), true, uint32_t(7000 + 10 * ++case_no));
    }
}

TEST_P(VulkanRouterTopkFusion, LoadsAheadKeepTheBits) {
    // MST_VULKAN_ROUTER_AHEAD on and off (each against the unfused commands, so against each
    // other): at 2048 columns (Qwen3's router) a bf16 lane at 32 lanes takes its two steps
    // from the weights loaded before the norm, f32 two more after them; at 1536 one step,
    // then a unit one at a time. At two rows a lane one step is loaded ahead, at four none
    // (x still staged from the norm's registers).
    std::string why;
    int case_no = 0;
    for (const MatvecShape s : {MatvecShape{32, 4, 1}, MatvecShape{16, 8, 2}, MatvecShape{32, 4, 4}}) {
        ASSERT_TRUE(gpu().set_matvec_tuning(MatvecTuning::at(s), why)) << s.name() << ": " << why;
        for (const bool ahead : {true, false}) {
            gpu().set_router_ahead(ahead);
            gpu().set_router_topk_fusion(true);  // the last case left it off
            ASSERT_TRUE(gpu().router_topk_fusion_fits(&why)) << s.name() << ": " << why;
            for (const int64_t cols : {2048, 1536})
                for (const DType t : {DType::BF16, DType::F32, DType::F16, DType::Q4})
                    check_same_routing(t, 128, 8, true, uint32_t(9000 + 10 * ++case_no), cols);
        }
    }
    // The ranking with the weights left unrenormalised, and a wide router.
    gpu().set_router_ahead(true);
    check_same_routing(DType::BF16, 128, 8, false, 9900, 2048);
    check_same_routing(DType::BF16, 1024, 8, true, 9910, 2048);
}

TEST_P(VulkanRouterTopkFusion, TheTopkTakesNoCommandAndNoLevelOfItsOwn) {
    const int64_t cols = 256;
    const MoeRouting m{cols, 128, 8, true,
                       {stable_weight(DType::BF16, 128, cols, 1), stable_weight(DType::BF16, 128, cols, 2)},
                       stable_weight(DType::BF16, 24, cols, 3), norm_weight(cols, 4)};
    route(gpu(), m, 2);  // the weights' first use (a discrete GPU's copies), the counter's fill
    uint64_t commands[2] = {}, barriers[2] = {};
    for (const bool on : {false, true}) {
        gpu().set_router_topk_fusion(on);
        route(gpu(), m, 2);  // the pipelines made
        const uint64_t c0 = gpu().stream().commands(), b0 = gpu().stream().barriers();
        const uint64_t fused = gpu().fused_router_topks();
        route(gpu(), m, 1);
        commands[on] = gpu().stream().commands() - c0;
        barriers[on] = gpu().stream().barriers() - b0;
        EXPECT_EQ(gpu().fused_router_topks() - fused, on ? 1u : 0u) << "fusion " << on;
    }
    EXPECT_EQ(commands[0] - commands[1], 1u) << commands[0] << " -> " << commands[1];
    EXPECT_EQ(barriers[0] - barriers[1], 1u) << barriers[0] << " -> " << barriers[1];
}

INSTANTIATE_TEST_SUITE_P(Memory, VulkanRouterTopkFusion, ::testing::Values(false, true), test::memory_kind_name);

#else

TEST(VulkanRouterTopkFusion, NeedsTheVulkanBackend) { GTEST_SKIP() << "this build has no Vulkan backend"; }

#endif

}  // namespace
}  // namespace mst
