// The host's side of a prefill on the Vulkan backend (docs/gpu_prefill.md, "The host's side
// of a 512-token prefill"; MST_VULKAN_PREFILL_HOST, backends/vulkan/prefill_host.cpp):
// BackendVector's floats start uninitialised unless the backend asks for zeros, and the
// results a wait copies into host memory are split over threads when they are large and
// do not overlap. Neither may change a result: a prefill layer (the library's attention,
// residual add, post norm and router product over 70 tokens) gives the same bits with the
// switch on and off and agrees with the CPU backend; a large delivery lands where each
// result belongs, by threads only when the switch is on; results whose host ranges
// overlap keep their order (the later one wins where they overlap). Unified memory and a
// discrete GPU's path (MST_VULKAN_SEPARATE_MEMORY=1). Without a Vulkan device every test is
// skipped, saying so.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "core/error.h"
#include "cpu_op_fixture.h"
#include "model/gqa_attention.h"
#include "model/kv_cache.h"
#include "scoped_env.h"
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

TEST(BackendVector, StartsUninitialisedOnTheCpuBackend) {
    CpuBackend cpu(1, cpu_isa_best());
    EXPECT_FALSE(cpu.zeroed_scratch_vectors()) << "the CPU backend's ops write every result before it is read";
    BackendVector v(cpu, 1000);
    EXPECT_EQ(v.size(), 1000u);
    ASSERT_NE(v.data(), nullptr);
}

#ifdef MST_HAVE_VULKAN

class VulkanPrefillHost : public test::VulkanMemorySuite {
protected:
    void TearDown() override {
        if (gpus_[GetParam()]) gpu().set_prefill_host(true);
    }
};

TEST_P(VulkanPrefillHost, ScratchVectorsStartZeroedOnlyWithTheSwitchOff) {
    EXPECT_TRUE(gpu().prefill_host());
    EXPECT_FALSE(gpu().zeroed_scratch_vectors());
    gpu().set_prefill_host(false);
    EXPECT_TRUE(gpu().zeroed_scratch_vectors());
    BackendVector v(gpu(), size_t(1) << 20);
    for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v.data()[i], 0.0f) << "element " << i;
    // Read once, at the backend's creation.
    const test::ScopedEnv off("MST_VULKAN_PREFILL_HOST", "0");
    const VulkanBackend made_off(BackendOptions{}, false);
    EXPECT_FALSE(made_off.prefill_host());
    EXPECT_TRUE(made_off.zeroed_scratch_vectors());
}

constexpr int32_t kHeads = 4, kKvHeads = 2, kHeadDim = 32;
constexpr int64_t kHidden = 96, kExperts = 12;

struct LayerWeights {
    GqaWeights attention;
    WeightView in_norm, post_norm, router;
};

LayerWeights layer_weights(DType t) {
    LayerWeights L;
    L.attention.q = stable_weight(t, kHeads * kHeadDim, kHidden, 1);
    L.attention.k = stable_weight(t, kKvHeads * kHeadDim, kHidden, 2);
    L.attention.v = stable_weight(t, kKvHeads * kHeadDim, kHidden, 3);
    L.attention.o = stable_weight(t, kHidden, kHeads * kHeadDim, 4);
    L.attention.q_norm = norm_weight(kHeadDim, 5);
    L.attention.k_norm = norm_weight(kHeadDim, 6);
    L.in_norm = norm_weight(kHidden, 7);
    L.post_norm = norm_weight(kHidden, 8);
    L.router = stable_weight(t, kExperts, kHidden, 9);
    return L;
}

// A prefill layer's first half as the models run it, in one batch: attention (input norm,
// q/k/v GEMMs, q/k norms, rope, KV append, blocked attention, o GEMM), the residual add,
// the post norm and the router product. Returns x, h, the router's logits, the attention's
// output and the layer's KV rows, in that order.
std::vector<float> prefill_layer(Backend &b, const LayerWeights &L, int64_t n) {
    RopeTable rope;
    rope.rotary_dim = kHeadDim;
    for (int32_t i = 0; i < kHeadDim / 2; ++i) rope.inv_freq.push_back(float(std::pow(1e4, -2.0 * i / kHeadDim)));
    const GqaShape shape{kHeads, kKvHeads, kHeadDim, 1e-6f, 0.0f, 0};
    KvCache cache(1, int32_t(n + 4), kKvHeads, kHeadDim, kHeadDim);
    std::vector<float> x = random_floats(size_t(n * kHidden), 10, -2.0f, 2.0f), h(x.size()), y(x.size());
    std::vector<float> logits(size_t(n * kExperts));
    {
        BackendBatch batch(b);
        gqa_attention_normed(b, L.attention, shape, rope, cache, 0, x.data(), L.in_norm, 1e-6f, h.data(), n, 0,
                             y.data());
        b.add(x.data(), y.data(), int64_t(x.size()));
        b.rms_norm(x.data(), L.post_norm, 0.0f, 1e-6f, h.data(), n, kHidden);
        b.matmul(L.router, h.data(), logits.data(), n);
    }
    std::vector<float> out = x;
    for (const std::vector<float> *v : {&h, &logits, &y}) out.insert(out.end(), v->begin(), v->end());
    std::vector<std::span<float>> kv;
    cache.contents(int32_t(n), kv);
    for (const std::span<float> &s : kv) out.insert(out.end(), s.begin(), s.end());
    return out;
}

TEST_P(VulkanPrefillHost, PrefillLayerIsTheSameBitsWithTheSwitchOnAndOff) {
    CpuBackend cpu(2, cpu_isa_best());
    const int64_t n = 70;  // a GEMM's and the blocked attention's token count, no tile divides it
    for (const DType t : {DType::F32, DType::BF16}) {
        const LayerWeights L = layer_weights(t);
        const std::vector<float> want = prefill_layer(cpu, L, n);
        std::vector<float> got[2];
        for (const bool on : {false, true}) {
            gpu().set_prefill_host(on);
            got[on] = prefill_layer(gpu(), L, n);
        }
        ASSERT_EQ(got[0].size(), want.size());
        ASSERT_EQ(got[1].size(), want.size());
        EXPECT_EQ(std::memcmp(got[0].data(), got[1].data(), want.size() * sizeof(float)), 0)
            << dtype_name(t) << ": the switch changed a result, max difference " << test::normalized_error(got[1], got[0]);
        EXPECT_LT(test::normalized_error(got[1], want), 1e-3) << dtype_name(t) << " against the CPU backend";
    }
}

// Rows of `src` gathered into `dst` inside a batch (a dispatch each: the stride is not the
// row length), so that their results wait in device memory for end_batch's delivery.
void gather_rows(Backend &b, const std::vector<float> &src, int64_t stride, float *dst, int64_t rows, int64_t len) {
    b.copy_rows(src.data(), stride, dst, rows, len);
}

TEST_P(VulkanPrefillHost, LargeDeliveryIsSplitOverThreadsAndLandsWhereEachResultBelongs) {
    // 4.9 MB and 0.3 MB of results, lengths no 1 MiB piece divides, delivered at one wait.
    const int64_t rows = 4099, len = 299, stride = 301;
    const std::vector<float> src = random_floats(size_t(rows * stride), 21);
    const std::vector<float> src_b(src.begin() + 3 * stride, src.end());
    std::vector<float> want_a(size_t(rows * len)), want_b(size_t(257 * len));
    for (int64_t r = 0; r < rows; ++r)
        std::memcpy(want_a.data() + r * len, src.data() + r * stride, size_t(len) * sizeof(float));
    std::memcpy(want_b.data(), want_a.data() + 3 * len, want_b.size() * sizeof(float));
    for (const bool on : {false, true}) {
        gpu().set_prefill_host(on);
        std::vector<float> a(want_a.size(), -1.0f), b(want_b.size(), -1.0f);
        const uint64_t threaded0 = gpu().stream().threaded_deliveries();
        {
            BackendBatch batch(gpu());
            gather_rows(gpu(), src, stride, a.data(), rows, len);
            gather_rows(gpu(), src_b, stride, b.data(), 257, len);
        }
        EXPECT_EQ(gpu().stream().threaded_deliveries() - threaded0, on ? 1u : 0u) << "switch " << on;
        EXPECT_EQ(std::memcmp(a.data(), want_a.data(), a.size() * sizeof(float)), 0) << "switch " << on;
        EXPECT_EQ(std::memcmp(b.data(), want_b.data(), b.size() * sizeof(float)), 0) << "switch " << on;
    }
}

TEST_P(VulkanPrefillHost, OverlappingResultsAreDeliveredInTheirOrder) {
    // Two results of 3 MB whose host ranges overlap by a third: the later one's bytes must
    // be there where they overlap, so the copies keep their order (no threads).
    const int64_t rows = 2600, len = 300, stride = 303, shift = 1700;
    const std::vector<float> first = random_floats(size_t(rows * stride), 31), second = random_floats(size_t(rows * stride), 32);
    std::vector<float> want(size_t((rows + shift) * len));
    for (int64_t r = 0; r < rows; ++r)
        std::memcpy(want.data() + r * len, first.data() + r * stride, size_t(len) * sizeof(float));
    for (int64_t r = 0; r < rows; ++r)
        std::memcpy(want.data() + (shift + r) * len, second.data() + r * stride, size_t(len) * sizeof(float));
    gpu().set_prefill_host(true);
    std::vector<float> got(want.size(), -1.0f);
    const uint64_t threaded0 = gpu().stream().threaded_deliveries();
    {
        BackendBatch batch(gpu());
        gather_rows(gpu(), first, stride, got.data(), rows, len);
        gather_rows(gpu(), second, stride, got.data() + shift * len, rows, len);
    }
    EXPECT_EQ(gpu().stream().threaded_deliveries() - threaded0, 0u) << "overlapping results took the threads";
    for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << "float " << i;
}

INSTANTIATE_TEST_SUITE_P(Memory, VulkanPrefillHost, ::testing::Values(false, true), test::memory_kind_name);
#endif

}  // namespace
}  // namespace mst
