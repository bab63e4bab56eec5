// The MoE half of a decode layer in fewer dispatches (MST_VULKAN_MOE_FUSION;
// docs/gpu_decode_kernels.md "The MoE half of a layer in fewer dispatches"): softmax_topk by rank
// (shaders/softmax_topk_rank.comp), gate + up + SwiGLU in one id dispatch
// (matvec_id_swiglu.comp), the down products with their sum in ascending id and the
// residual add in another (matvec_id_combine.comp, DeviceExperts::routed_swiglu_by_id_add)
// or, by default (MST_VULKAN_COMBINE_IN_DOWN=0), the down products on matvec_id's grid and
// their sum with the residual add in combine_id.comp. Each against main's commands (the switch off) bit for bit, and against the CPU, on
// unified and discrete memory, for every id kernel type at odd sizes and k of 1, 2, 8 and 9,
// with and without subgroup arithmetic. Without a Vulkan device every test is skipped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/device_experts.h"
#include "backends/device_routing.h"
#include "core/error.h"
#include "cpu_op_fixture.h"
#include "expect_error.h"
#include "router/softmax_topk.h"
#include "stable_weight.h"
#include "test_weight.h"
#ifdef MST_HAVE_VULKAN
#include "vulkan_memory_suite.h"
#endif

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN
using test::normalized_error;
using test::random_floats;
using test::TestWeight;
using test::float_bits;

// As test_vulkan_experts_by_id: float weights sum float32 products in other orders; for
// Q8/Q4 the CPU rounds activations per block, the GPU does not.
constexpr double kFloatBound = 2e-5, kQuantBound = 3e-4;
constexpr int32_t kExperts = 9;

// Every expert of one layer, keyed for the layer.
struct Experts {
    int64_t layer, hidden, inter;
    std::vector<std::unique_ptr<TestWeight>> parts;
    std::vector<WeightView> gate, up, down;
    Experts(DType t, int64_t layer_, int64_t hidden_, int64_t inter_, uint32_t seed)
        : layer(layer_), hidden(hidden_), inter(inter_) {
        for (int32_t e = 0; e < kExperts; ++e) {
            for (int p = 0; p < 3; ++p) {
                parts.push_back(std::make_unique<TestWeight>(t, p < 2 ? inter : hidden, p < 2 ? hidden : inter,
                                                             seed + uint32_t(3 * e + p)));
                parts.back()->view.expert_key = make_expert_key(layer, e, p);
            }
            gate.push_back(parts[size_t(3 * e)]->view);
            up.push_back(parts[size_t(3 * e + 1)]->view);
            down.push_back(parts[size_t(3 * e + 2)]->view);
        }
    }
    SwigluExpertSet set() const { return SwigluExpertSet{layer, kExperts, gate.data(), up.data(), down.data()}; }
    // out += the chosen experts of one token through Backend::routed_swiglu (the CPU's way).
    void host_path(Backend &b, const float *h, float *out, const std::vector<int32_t> &ids,
                   const std::vector<float> &w) const {
        static const int64_t token0 = 0;
        std::vector<SwigluExpertUse> uses;
        for (int32_t e = 0; e < kExperts; ++e)
            for (size_t j = 0; j < ids.size(); ++j)
                if (ids[j] == e)
                    uses.push_back(SwigluExpertUse{gate[size_t(e)], up[size_t(e)], down[size_t(e)], &token0, &w[j], 1});
        b.routed_swiglu(h, out, 1, hidden, uses.data(), uses.size());
    }
};

// k distinct ids of 0..kExperts-1, not in ascending order.
std::vector<int32_t> chosen(int32_t k, uint32_t seed) {
    std::vector<int32_t> ids(kExperts);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(seed));
    ids.resize(size_t(k));
    if (k > 1 && std::is_sorted(ids.begin(), ids.end())) std::swap(ids[0], ids[1]);
    return ids;
}

// For every id kernel type (rows no workgroup of rows divides, columns of whole units but
// not whole unrolled steps of a lane) and k of 1, 2, 8 and 9: routed_swiglu_by_id with the
// fusion on equals it with the fusion off bit for bit; routed_swiglu_by_id_add equals the
// unfused "sum into zeros, then add" bit for bit; both are the CPU's result; and the fused
// commands are fewer.
void expect_fused_experts_equal_unfused(VulkanBackend &gpu, Backend &cpu, int64_t first_layer) {
    struct Case {
        DType t;
        int64_t hidden, inter;
    };
    const Case cases[] = {{DType::F32, 36, 20}, {DType::F16, 40, 24}, {DType::BF16, 56, 72},
                          {DType::Q8, 96, 160}, {DType::Q4, 96, 160}, {DType::Q4, 2080, 96}};
    DeviceExperts *by_id = device_experts(gpu);
    ASSERT_NE(by_id, nullptr);
    for (size_t c = 0; c < std::size(cases); ++c) {
        const Case &cs = cases[c];
        const Experts L(cs.t, first_layer + int64_t(c), cs.hidden, cs.inter, uint32_t(100 * c + 3));
        ASSERT_TRUE(by_id->make_experts_resident(L.set())) << dtype_name(cs.t);
        for (const int32_t k : {1, 2, 8, 9})  // 9: more than one chunk of the combine kernel
        for (const bool one_dispatch : {false, true}) {  // MST_VULKAN_COMBINE_IN_DOWN
            gpu.set_combine_in_down(one_dispatch);
            const std::string what = std::string(dtype_name(cs.t)) + " " + std::to_string(cs.hidden) + "x" +
                                     std::to_string(cs.inter) + " k=" + std::to_string(k) +
                                     (one_dispatch ? ", down and combine in one dispatch" : ", in two");
            const std::vector<int32_t> ids = chosen(k, uint32_t(c * 10 + size_t(k)));
            const std::vector<float> w = random_floats(size_t(k), uint32_t(7 + c), 0.1f, 1.0f);
            const std::vector<float> h = random_floats(size_t(cs.hidden), uint32_t(8 + c));
            const std::vector<float> start = random_floats(size_t(cs.hidden), uint32_t(9 + c));

            // out += the sum (routed_swiglu_by_id's contract), off and on.
            std::vector<float> off = start, on = start, want = start;
            L.host_path(cpu, h.data(), want.data(), ids, w);
            gpu.set_moe_fusion(false);
            const uint64_t c0 = gpu.stream().commands();
            by_id->routed_swiglu_by_id(L.layer, h.data(), off.data(), cs.hidden, ids.data(), w.data(), k);
            const uint64_t off_commands = gpu.stream().commands() - c0;
            gpu.set_moe_fusion(true);
            const uint64_t c1 = gpu.stream().commands();
            by_id->routed_swiglu_by_id(L.layer, h.data(), on.data(), cs.hidden, ids.data(), w.data(), k);
            const uint64_t on_commands = gpu.stream().commands() - c1;
            EXPECT_EQ(float_bits(on), float_bits(off)) << what;
            EXPECT_EQ(on_commands + (one_dispatch ? 3 : 2), off_commands)
                << what << ": gate+up+silu_mul fused (and down+combine)";
            const double bound = dtype_is_quantized(cs.t) ? kQuantBound : kFloatBound;
            EXPECT_LT(normalized_error(on, want), bound) << what;

            // x = x + (0 + the sum): the fused add against the unfused zeros, sum and add.
            std::vector<float> x_off = start, y(size_t(cs.hidden), 0.0f), x_on = start;
            gpu.set_moe_fusion(false);
            EXPECT_FALSE(by_id->routed_swiglu_by_id_add(L.layer, h.data(), x_off.data(), cs.hidden, ids.data(),
                                                        w.data(), k))
                << "with the fusion off the caller records the sum and the add";
            {
                BackendBatch batch(gpu);
                by_id->routed_swiglu_by_id(L.layer, h.data(), y.data(), cs.hidden, ids.data(), w.data(), k);
                gpu.add(x_off.data(), y.data(), cs.hidden);
            }
            gpu.set_moe_fusion(true);
            const uint64_t c2 = gpu.stream().commands();
            EXPECT_TRUE(by_id->routed_swiglu_by_id_add(L.layer, h.data(), x_on.data(), cs.hidden, ids.data(),
                                                       w.data(), k));
            gpu.sync();
            EXPECT_EQ(gpu.stream().commands() - c2, on_commands) << what << ": the add costs no command";
            EXPECT_EQ(float_bits(x_on), float_bits(x_off)) << what;
            std::vector<float> x_want(size_t(cs.hidden), 0.0f);
            L.host_path(cpu, h.data(), x_want.data(), ids, w);
            for (size_t i = 0; i < x_want.size(); ++i) x_want[i] += start[i];
            EXPECT_LT(normalized_error(x_on, x_want), bound) << what;
        }
    }
    gpu.set_combine_in_down(false);
}

class VulkanMoeFusion : public test::VulkanMemorySuite {
protected:
    void TearDown() override {
        if (IsSkipped()) return;
        gpu().set_moe_fusion(true);
        gpu().set_q4_block(false);
        gpu().set_combine_in_down(false);
        std::string why;
        gpu().set_matvec_tuning(gpu().default_matvec_tuning(), why);
    }
};

TEST_P(VulkanMoeFusion, FusedExpertsEqualTheUnfusedCommandsBitForBitAndTheCpu) {
    expect_fused_experts_equal_unfused(gpu(), cpu_, 200);
}

// The q4 units of a whole block (MST_VULKAN_Q4_BLOCK=1, another summation order than the
// default quarter-block units): every id kernel sums in that order too, so fusing still
// changes no bit.
TEST_P(VulkanMoeFusion, WholeBlockQ4UnitsKeepTheFusedBitsToo) {
    gpu().set_q4_block(true);
    expect_fused_experts_equal_unfused(gpu(), cpu_, 260);
    gpu().set_q4_block(false);
}

// The fused gate+up+SwiGLU and the down products at several rows a lane
// (MST_VULKAN_MATVEC_TUNING=swiglu=LxRxP,combine=LxRxP; matvec_id_combine.comp, with the
// down products in one dispatch, takes one) against the unfused products at the default
// shape (one row a lane): each row is summed in the same order whatever the rows a lane, so
// still no bit changes; P = 5 leaves the last workgroup's lanes partly past every case's
// last row.
TEST_P(VulkanMoeFusion, SeveralRowsALaneInTheExpertsKeepTheFusedBits) {
    for (const uint32_t p : {2u, 5u}) {
        MatvecTuning t = gpu().default_matvec_tuning();
        t.swiglu.per_lane = p;
        t.combine.per_lane = p;
        std::string why;
        ASSERT_TRUE(gpu().set_matvec_tuning(t, why)) << why;
        expect_fused_experts_equal_unfused(gpu(), cpu_, 300 + 10 * int64_t(p));
    }
}

TEST(VulkanMoeFusionWithoutSubgroups, FusedExpertsEqualTheUnfusedCommandsBitForBitAndTheCpu) {
    // The kernels' shared-memory reductions (devices without subgroup arithmetic).
    std::string why;
    const std::unique_ptr<VulkanBackend> gpu = test::vulkan_backend_without_subgroups(&why);
    if (!gpu) GTEST_SKIP() << "no Vulkan device found: " << why;
    CpuBackend cpu(2, cpu_isa_best());
    expect_fused_experts_equal_unfused(*gpu, cpu, 220);
}

TEST_P(VulkanMoeFusion, TopKByRankEqualsTheKPassKernelBitForBitAndTheCpuIds) {
    // Logits on a grid of quarters, so that equal probabilities (ties to the lower id) are
    // common; 1100 experts: more than the rank kernel keeps in shared memory.
    DeviceRouting *routing = device_routing(gpu());
    for (const int32_t E : {1, 7, 128, 129, 1100}) {
        const int64_t n = 5;
        std::vector<float> logits = random_floats(size_t(n * E), uint32_t(E) + 11, -3.0f, 3.0f);
        for (float &l : logits) l = std::round(l * 4.0f) / 4.0f;
        for (const int32_t k : {1, 2, 8, E}) {
            if (k > E) continue;
            for (const bool renormalize : {false, true}) {
                const std::string what = "E=" + std::to_string(E) + " k=" + std::to_string(k) +
                                         " renormalize=" + std::to_string(renormalize);
                std::vector<int32_t> want_ids(size_t(n * k)), ids_off(size_t(n * k)), ids_on(size_t(n * k), -7);
                std::vector<float> want_w(size_t(n * k)), w_off(size_t(n * k)), w_on(size_t(n * k), NAN);
                route_softmax_topk(logits.data(), n, E, k, renormalize, want_ids.data(), want_w.data());
                gpu().set_moe_fusion(false);
                routing->softmax_topk(logits.data(), n, E, k, renormalize, ids_off.data(), w_off.data());
                gpu().set_moe_fusion(true);
                routing->softmax_topk(logits.data(), n, E, k, renormalize, ids_on.data(), w_on.data());
                EXPECT_EQ(ids_on, want_ids) << what;
                EXPECT_EQ(ids_on, ids_off) << what;
                EXPECT_EQ(float_bits(w_on), float_bits(w_off)) << what;
                for (size_t i = 0; i < w_on.size(); ++i)
                    EXPECT_NEAR(w_on[i], want_w[i], 2e-6f * std::max(1.0f, want_w[i])) << what;
            }
        }
    }
}

TEST_P(VulkanMoeFusion, AMissingExpertIsAnErrorThroughTheFusedAdd) {
    // Layer 240 with expert 4 not provided: the fused kernels report the miss as
    // matvec_id does, at the end of the batch, and the backend goes on working.
    const int64_t hidden = 64, inter = 32;
    Experts L(DType::Q4, 240, hidden, inter, 900);
    std::vector<WeightView> gate = L.gate, up = L.up, down = L.down;
    gate[4].data = up[4].data = down[4].data = nullptr;
    DeviceExperts *by_id = device_experts(gpu());
    ASSERT_TRUE(by_id->make_experts_resident(SwigluExpertSet{240, kExperts, gate.data(), up.data(), down.data()}));
    const std::vector<float> h = random_floats(size_t(hidden), 901), w = {0.5f, 0.5f};
    std::vector<float> x(size_t(hidden), 0.0f);
    const std::vector<int32_t> missing = {2, 4}, present = {0, 3};
    test::expect_error(
        [&] {
            BackendBatch batch(gpu());
            EXPECT_TRUE(by_id->routed_swiglu_by_id_add(240, h.data(), x.data(), hidden, missing.data(), w.data(), 2));
        },
        MST_ERR_BACKEND, {"layer 240", "expert 4", "not on the device"});
    std::vector<float> want(size_t(hidden), 0.0f), got(size_t(hidden), 0.0f);
    L.host_path(cpu_, h.data(), want.data(), present, w);
    EXPECT_TRUE(by_id->routed_swiglu_by_id_add(240, h.data(), got.data(), hidden, present.data(), w.data(), 2));
    gpu().sync();
    EXPECT_LT(normalized_error(got, want), kQuantBound);
}

INSTANTIATE_TEST_SUITE_P(Memory, VulkanMoeFusion, ::testing::Values(false, true), test::memory_kind_name);
#else
TEST(VulkanMoeFusion, NeedsTheVulkanBackend) { GTEST_SKIP() << "this build has no Vulkan backend"; }
#endif

}  // namespace
}  // namespace mst
