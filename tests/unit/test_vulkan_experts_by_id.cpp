// Routed experts chosen on the device (backends/device_experts.h, op_experts_by_id.cpp,
// shaders/matvec_id.comp and combine_id.comp; docs/device_graph.md "One submission per
// resident decode step"): one token's experts from ids and weights the host never reads,
// through each layer's slot table. Checked on unified and discrete memory: every id
// kernel type at sizes no workgroup divides against the CPU and the host path
// (routed_swiglu); a decode-like chain of layers routed on the device in one wait; an
// expert missing from the table is an error at the end of the batch, never a result; the
// layers the backend declines; and the kernels without subgroup arithmetic.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/device_experts.h"
#include "backends/device_routing.h"
#include "core/error.h"
#include "cpu_op_fixture.h"
#include "expect_error.h"
#include "router/softmax_topk.h"
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
using VulkanExpertsById = test::VulkanMemorySuite;

// As test_vulkan_ops: float weights sum float32 products in other orders; for Q8/Q4 the
// CPU rounds activations per block, the GPU does not.
constexpr double kFloatBound = 2e-5, kQuantBound = 3e-4;


// Every expert of one layer, its views keyed for the layer; `absent` experts not provided.
struct ExpertLayer {
    int64_t layer, hidden, inter;
    int32_t n_experts;
    std::vector<std::unique_ptr<TestWeight>> parts;
    std::vector<WeightView> gate, up, down;
    ExpertLayer(DType t, int64_t layer_, int32_t e, int64_t hidden_, int64_t inter_, uint32_t seed,
                std::vector<int32_t> absent = {})
        : layer(layer_), hidden(hidden_), inter(inter_), n_experts(e) {
        for (int32_t x = 0; x < e; ++x) {
            for (int p = 0; p < 3; ++p) {
                parts.push_back(std::make_unique<TestWeight>(t, p < 2 ? inter : hidden, p < 2 ? hidden : inter,
                                                             seed + uint32_t(3 * x + p)));
                parts.back()->view.expert_key = make_expert_key(layer, x, p);
            }
            gate.push_back(parts[size_t(3 * x)]->view);
            up.push_back(parts[size_t(3 * x + 1)]->view);
            down.push_back(parts[size_t(3 * x + 2)]->view);
        }
        for (int32_t x : absent) gate[size_t(x)].data = up[size_t(x)].data = down[size_t(x)].data = nullptr;
    }
    SwigluExpertSet set() const { return SwigluExpertSet{layer, n_experts, gate.data(), up.data(), down.data()}; }
    // out += the chosen experts of one token, through Backend::routed_swiglu (the host path).
    void host_path(Backend &b, const float *h, float *out, const std::vector<int32_t> &ids,
                   const std::vector<float> &w) const {
        static const int64_t token0 = 0;
        std::vector<SwigluExpertUse> uses;
        for (int32_t e = 0; e < n_experts; ++e)
            for (size_t j = 0; j < ids.size(); ++j)
                if (ids[j] == e) uses.push_back(SwigluExpertUse{gate[size_t(e)], up[size_t(e)], down[size_t(e)], &token0, &w[j], 1});
        b.routed_swiglu(h, out, 1, hidden, uses.data(), uses.size());
    }
};

// A forward step's chain of MoE layers, as the decode and the batch chains below run it:
// per layer an f32 router and Q4 experts, and the step's input rows. run() hands each
// layer's router logits to `experts_of`, which writes the layer's experts' output into y,
// and adds y into the residual stream x, all in one batch.
struct RoutedChain {
    static constexpr int64_t hidden = 64, inter = 96, layers = 3;
    static constexpr int32_t E = 9, k = 3;
    int64_t n;
    std::vector<std::unique_ptr<ExpertLayer>> experts;
    std::vector<std::unique_ptr<TestWeight>> routers;
    std::vector<float> x0;
    RoutedChain(int64_t first_layer, int64_t n_tokens, uint32_t seed)
        : n(n_tokens), x0(random_floats(size_t(n_tokens * hidden), seed + 200)) {
        for (int64_t l = 0; l < layers; ++l) {
            experts.push_back(std::make_unique<ExpertLayer>(DType::Q4, first_layer + l, E, hidden, inter,
                                                            uint32_t(seed + 40 * l)));
            routers.push_back(std::make_unique<TestWeight>(DType::F32, E, hidden, uint32_t(seed + 100 + l)));
        }
    }
    // experts_of(layer index, x, y, logits).
    template <typename F>
    std::vector<float> run(Backend &b, F &&experts_of) const {
        std::vector<float> x = x0, y(x0.size()), logits(size_t(n * E));
        {
            BackendBatch batch(b);
            for (int64_t l = 0; l < layers; ++l) {
                b.matmul(routers[size_t(l)]->view, x.data(), logits.data(), n);
                b.drop_results(y.data(), y.size() * sizeof(float));
                experts_of(l, x, y, logits);
                b.add(x.data(), y.data(), int64_t(x.size()));
            }
        }
        return x;
    }
};

// Every id kernel type against the CPU and against routed_swiglu on the same backend.
void expect_every_type_matches(VulkanBackend &gpu, Backend &cpu) {
    // (type, hidden, inter): rows no workgroup of rows divides, columns of whole units
    // but not whole unrolled steps of a lane.
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
        const int64_t layer = int64_t(10 + c);
        const ExpertLayer L(cs.t, layer, 7, cs.hidden, cs.inter, uint32_t(100 * c + 1));
        ASSERT_TRUE(by_id->make_experts_resident(L.set())) << dtype_name(cs.t);
        const std::vector<int32_t> ids = {5, 1, 6};  // not in ascending order
        const std::vector<float> w = random_floats(ids.size(), uint32_t(7 + c), 0.1f, 1.0f);
        const std::vector<float> h = random_floats(size_t(cs.hidden), uint32_t(8 + c));
        const std::vector<float> start = random_floats(size_t(cs.hidden), uint32_t(9 + c));
        std::vector<float> want = start, host = start, got = start;
        L.host_path(cpu, h.data(), want.data(), ids, w);
        L.host_path(gpu, h.data(), host.data(), ids, w);
        const uint64_t calls0 = gpu.experts_by_id_calls();
        by_id->routed_swiglu_by_id(layer, h.data(), got.data(), cs.hidden, ids.data(), w.data(), int32_t(ids.size()));
        EXPECT_EQ(gpu.experts_by_id_calls() - calls0, 1u);
        const double bound = dtype_is_quantized(cs.t) ? kQuantBound : kFloatBound;
        EXPECT_LT(normalized_error(got, want), bound) << dtype_name(cs.t) << " " << cs.hidden << "x" << cs.inter;
        EXPECT_LT(normalized_error(got, host), kFloatBound) << "against routed_swiglu, " << dtype_name(cs.t);
    }
}

TEST_P(VulkanExpertsById, EveryTypeMatchesTheCpuAndTheHostPath) { expect_every_type_matches(gpu(), cpu_); }

TEST(VulkanExpertsByIdWithoutSubgroups, EveryTypeMatchesTheCpuAndTheHostPath) {
    // matvec_id.comp's shared-memory reduction (devices without subgroup arithmetic).
    std::string why;
    const std::unique_ptr<VulkanBackend> gpu = test::vulkan_backend_without_subgroups(&why);
    if (!gpu) GTEST_SKIP() << "no Vulkan device found: " << why;
    CpuBackend cpu(2, cpu_isa_best());
    expect_every_type_matches(*gpu, cpu);
}

TEST_P(VulkanExpertsById, DecodeLayersRoutedOnTheDeviceWaitOnce) {
    // A decode step's shape: per layer a router product, softmax top-k and the experts
    // chosen on the device, added into the residual stream; the host reads nothing until
    // the end. One wait for the whole step, and the CPU's result (host top-k, host
    // experts).
    const RoutedChain chain(20, 1, 500);
    const int32_t E = RoutedChain::E, k = RoutedChain::k;
    auto step = [&](Backend &b, bool on_device) {
        std::vector<int32_t> ids(static_cast<size_t>(k));
        std::vector<float> w(static_cast<size_t>(k));
        return chain.run(b, [&](int64_t l, std::vector<float> &x, std::vector<float> &y, std::vector<float> &logits) {
            std::fill(y.begin(), y.end(), 0.0f);
            const ExpertLayer &L = *chain.experts[size_t(l)];
            if (on_device) {
                device_routing(b)->softmax_topk(logits.data(), 1, E, k, true, ids.data(), w.data());
                EXPECT_TRUE(device_experts(b)->make_experts_resident(L.set()));
                device_experts(b)->routed_swiglu_by_id(L.layer, x.data(), y.data(), L.hidden, ids.data(), w.data(), k);
            } else {
                route_softmax_topk(logits.data(), 1, E, k, true, ids.data(), w.data());
                L.host_path(b, x.data(), y.data(), ids, w);
            }
        });
    };
    const std::vector<float> want = step(cpu_, false);
    step(gpu(), true);  // stacks the layers (uploads: a wait of their own on a discrete GPU)
    const uint64_t waits0 = gpu().submissions(), calls0 = gpu().experts_by_id_calls();
    const std::vector<float> got = step(gpu(), true);
    EXPECT_EQ(gpu().submissions() - waits0, 1u) << "waits in one resident decode step";
    EXPECT_EQ(gpu().experts_by_id_calls() - calls0, uint64_t(RoutedChain::layers));
    EXPECT_LT(normalized_error(got, want), kQuantBound);
}

TEST_P(VulkanExpertsById, AnExpertMissingFromTheTableIsAnErrorNotAResult) {
    const int64_t hidden = 64, inter = 32;
    const ExpertLayer L(DType::Q4, 30, 6, hidden, inter, 800, {4});
    DeviceExperts *by_id = device_experts(gpu());
    ASSERT_TRUE(by_id->make_experts_resident(L.set()));
    const std::vector<float> h = random_floats(size_t(hidden), 801), w = {0.5f, 0.5f};
    std::vector<float> out(size_t(hidden), 0.0f);
    const std::vector<int32_t> present = {0, 3}, missing = {2, 4};
    // In a batch: the error comes with the batch's end.
    test::expect_error(
        [&] {
            BackendBatch batch(gpu());
            by_id->routed_swiglu_by_id(30, h.data(), out.data(), hidden, missing.data(), w.data(), 2);
        },
        MST_ERR_BACKEND, {"layer 30", "expert 4", "not on the device"});
    // Alone (its own wait), and the backend goes on working after it.
    test::expect_error([&] { by_id->routed_swiglu_by_id(30, h.data(), out.data(), hidden, missing.data(), w.data(), 2); },
                       MST_ERR_BACKEND, {"layer 30", "expert 4"});
    std::vector<float> want(size_t(hidden), 0.0f), got(size_t(hidden), 0.0f);
    L.host_path(cpu_, h.data(), want.data(), present, w);
    by_id->routed_swiglu_by_id(30, h.data(), got.data(), hidden, present.data(), w.data(), 2);
    EXPECT_LT(normalized_error(got, want), kQuantBound);
    // Provided later, the expert joins the table.
    const ExpertLayer full(DType::Q4, 30, 6, hidden, inter, 800);
    ASSERT_TRUE(by_id->make_experts_resident(full.set()));
    std::fill(want.begin(), want.end(), 0.0f);
    std::fill(got.begin(), got.end(), 0.0f);
    full.host_path(cpu_, h.data(), want.data(), missing, w);
    by_id->routed_swiglu_by_id(30, h.data(), got.data(), hidden, missing.data(), w.data(), 2);
    EXPECT_LT(normalized_error(got, want), kQuantBound);
}

TEST_P(VulkanExpertsById, LayersTheBackendDeclineKeepTheHostPath) {
    DeviceExperts *by_id = device_experts(gpu());
    // A type the id kernels do not take, and rows that are not whole units.
    const ExpertLayer mxfp4(DType::MXFP4, 40, 3, 64, 32, 900), ragged(DType::BF16, 41, 3, 60, 20, 910);
    EXPECT_FALSE(by_id->make_experts_resident(mxfp4.set()));
    EXPECT_FALSE(by_id->make_experts_resident(ragged.set()));
    test::expect_error([&] {
        const std::vector<float> h(64), w(1, 1.0f);
        std::vector<float> out(64);
        const int32_t id = 0;
        by_id->routed_swiglu_by_id(40, h.data(), out.data(), 64, &id, w.data(), 1);
    }, MST_ERR_INVALID_ARGUMENT, {"layer 40", "not made resident"});
    // Switched off (MST_VULKAN_EXPERTS_BY_ID=0 at creation): every layer declined.
    const ExpertLayer fine(DType::Q4, 42, 3, 64, 32, 920);
    gpu().set_experts_by_id(false);
    EXPECT_FALSE(by_id->make_experts_resident(fine.set()));
    gpu().set_experts_by_id(true);
    EXPECT_TRUE(by_id->make_experts_resident(fine.set()));
}

TEST(VulkanExpertsByIdBudget, ALayerOrModelOverTheExpertBudgetIsDeclined) {
    BackendOptions options;
    options.gpu_expert_cache_bytes = 64 << 10;  // less than the layer below
    std::unique_ptr<VulkanBackend> gpu;
    try {
        gpu = std::make_unique<VulkanBackend>(options, false);
    } catch (const Error &e) {
        GTEST_SKIP() << "no Vulkan device found: " << e.what();
    }
    const ExpertLayer big(DType::F32, 0, 8, 128, 64, 950);  // 8 x 3 x 32 KiB
    const ExpertLayer small(DType::Q4, 1, 2, 64, 32, 960);
    EXPECT_FALSE(gpu->make_experts_resident(big.set()));
    // A layer that fits, of a model whose experts do not all fit (streamed decode): the
    // budget stays the expert cache's.
    SwigluExpertSet of_big_model = small.set();
    of_big_model.model_expert_bytes = 1 << 20;
    EXPECT_FALSE(gpu->make_experts_resident(of_big_model));
    EXPECT_TRUE(gpu->make_experts_resident(small.set()));
}

// A batch's choices grouped on the host, as ffn.cpp and bench_vulkan invert the routing:
// experts in ascending id, each with its tokens in order, through routed_swiglu.
void host_grouped(Backend &b, const ExpertLayer &L, const float *h, float *out, int64_t n, int32_t k,
                  const std::vector<int32_t> &ids, const std::vector<float> &w) {
    std::vector<std::vector<int64_t>> tokens(size_t(L.n_experts));
    std::vector<std::vector<float>> weights(size_t(L.n_experts));
    for (int64_t s = 0; s < n * k; ++s) {
        tokens[size_t(ids[size_t(s)])].push_back(s / k);
        weights[size_t(ids[size_t(s)])].push_back(w[size_t(s)]);
    }
    std::vector<SwigluExpertUse> uses;
    for (int32_t e = 0; e < L.n_experts; ++e)
        if (!tokens[size_t(e)].empty())
            uses.push_back(SwigluExpertUse{L.gate[size_t(e)], L.up[size_t(e)], L.down[size_t(e)],
                                           tokens[size_t(e)].data(), weights[size_t(e)].data(),
                                           int64_t(tokens[size_t(e)].size())});
    b.routed_swiglu(h, out, n, L.hidden, uses.data(), uses.size());
}

// routed_swiglu_batch_by_id (op_experts_device_grouped.cpp): the grouping built on the
// device from the ids gives the host grouping's rows, tiles and sums, so the same bits, at
// sizes no 64-token tile divides, with unused experts, one expert taking every token (three
// tiles), and experts of one, 64 and 65 tokens.
TEST_P(VulkanExpertsById, BatchGroupedOnTheDeviceEqualsTheHostGrouping) {
    struct Case {
        DType t;
        int64_t hidden, inter, n;
        int32_t k;
        const char *what;
    };
    const Case cases[] = {{DType::Q4, 96, 160, 70, 3, "random choices, experts 2 and 5 unused"},
                          {DType::F32, 36, 20, 130, 1, "every token on expert 4"},
                          {DType::BF16, 56, 72, 16, 2, "the fewest tokens a batch takes"},
                          {DType::Q8, 96, 64, 130, 2, "expert 0 on every token, then 1, 64, 65 tokens"}};
    DeviceExperts *by_id = device_experts(gpu());
    for (size_t c = 0; c < std::size(cases); ++c) {
        const Case &cs = cases[c];
        const int32_t E = 7;
        const int64_t layer = int64_t(50 + c);
        const ExpertLayer L(cs.t, layer, E, cs.hidden, cs.inter, uint32_t(1000 + 50 * c));
        ASSERT_TRUE(by_id->make_experts_resident(L.set()));
        ASSERT_TRUE(by_id->batch_by_id(layer, E, cs.n)) << cs.what;
        std::vector<int32_t> ids(size_t(cs.n * cs.k));
        uint32_t r = uint32_t(77 + c);
        for (int64_t t = 0; t < cs.n; ++t) {
            int32_t *row = ids.data() + t * cs.k;
            if (c == 0) {  // 3 distinct of {0, 1, 3, 4, 6}, in no order
                const int32_t pool[5] = {0, 1, 3, 4, 6};
                const int32_t first = int32_t((r = r * 1103515245u + 12345u) >> 16) % 5;
                for (int32_t j = 0; j < 3; ++j) row[j] = pool[(first + 2 * j) % 5];
            } else if (c == 1) {
                row[0] = 4;
            } else if (c == 2) {
                row[0] = int32_t(t % 3) + 4;
                row[1] = int32_t(t % 2);
            } else {  // the second choice: expert 1 once, 3 for 64 tokens, 6 for the other 64
                row[0] = 0;
                row[1] = t == 0 ? 1 : (t <= 64 ? 3 : 6);
                if (t % 5 == 0) std::swap(row[0], row[1]);
            }
        }
        const std::vector<float> w = random_floats(ids.size(), uint32_t(80 + c), 0.1f, 1.0f);
        const std::vector<float> h = random_floats(size_t(cs.n * cs.hidden), uint32_t(81 + c));
        // Against the CPU as the other tests compare: added to a random start (a residual).
        const std::vector<float> start = random_floats(size_t(cs.n * cs.hidden), uint32_t(82 + c));
        std::vector<float> want = start, host(start.size(), 0.0f);
        std::vector<float> got(want.size(), 123.0f);  // overwritten, not added to
        host_grouped(cpu_, L, h.data(), want.data(), cs.n, cs.k, ids, w);
        host_grouped(gpu(), L, h.data(), host.data(), cs.n, cs.k, ids, w);
        const uint64_t calls0 = gpu().batch_by_id_calls(), grouped0 = gpu().grouped_expert_dispatches();
        by_id->routed_swiglu_batch_by_id(layer, h.data(), got.data(), cs.n, cs.hidden, ids.data(), w.data(), cs.k);
        EXPECT_EQ(gpu().batch_by_id_calls() - calls0, 1u);
        EXPECT_EQ(gpu().grouped_expert_dispatches() - grouped0, 3u) << "gate, up and down: one grouped GEMM each";
        EXPECT_EQ(std::memcmp(got.data(), host.data(), got.size() * sizeof(float)), 0)
            << cs.what << ": not the host grouping's bits, max difference " << normalized_error(got, host);
        for (size_t i = 0; i < got.size(); ++i) got[i] += start[i];
        const double bound = dtype_is_quantized(cs.t) ? kQuantBound : kFloatBound;
        EXPECT_LT(normalized_error(got, want), bound) << cs.what;
    }
}

// A prefill-like chain: the router's top-k on the device, its ids never read by the host,
// grouped and computed on the device for every layer in one wait; the same bits as the
// host grouping after a wait for the ids (what MST_VULKAN_DEVICE_GROUPING=0 runs).
TEST_P(VulkanExpertsById, BatchChainRoutedAndGroupedOnTheDeviceInOneWait) {
    const RoutedChain chain(60, 40, 1500);
    const int64_t n = chain.n;
    const int32_t E = RoutedChain::E, k = RoutedChain::k;
    enum class Grouping { cpu, host, device };
    auto step = [&](Backend &b, Grouping grouping) {
        std::vector<int32_t> ids(size_t(n * k));
        std::vector<float> w(size_t(n * k));
        return chain.run(b, [&](int64_t l, std::vector<float> &x, std::vector<float> &y, std::vector<float> &logits) {
            const ExpertLayer &L = *chain.experts[size_t(l)];
            if (grouping == Grouping::device) {
                device_routing(b)->softmax_topk(logits.data(), n, E, k, true, ids.data(), w.data());
                EXPECT_TRUE(device_experts(b)->make_experts_resident(L.set()));
                device_experts(b)->routed_swiglu_batch_by_id(L.layer, x.data(), y.data(), n, L.hidden, ids.data(),
                                                             w.data(), k);
                return;
            }
            if (grouping == Grouping::host) {
                device_routing(b)->softmax_topk(logits.data(), n, E, k, true, ids.data(), w.data());
                const Backend::HostSpan reads[] = {{ids.data(), ids.size() * 4}, {w.data(), w.size() * 4}};
                b.sync_reads(reads);
            } else {
                route_softmax_topk(logits.data(), n, E, k, true, ids.data(), w.data());
            }
            std::fill(y.begin(), y.end(), 0.0f);
            host_grouped(b, L, x.data(), y.data(), n, k, ids, w);
        });
    };
    const std::vector<float> cpu = step(cpu_, Grouping::cpu);
    step(gpu(), Grouping::device);  // stacks the layers (uploads: a wait of their own on a discrete GPU)
    const std::vector<float> host = step(gpu(), Grouping::host);
    const uint64_t waits0 = gpu().submissions(), calls0 = gpu().batch_by_id_calls();
    const std::vector<float> got = step(gpu(), Grouping::device);
    EXPECT_EQ(gpu().submissions() - waits0, 1u) << "waits in one resident prefill of " << RoutedChain::layers
                                                 << " layers";
    EXPECT_EQ(gpu().batch_by_id_calls() - calls0, uint64_t(RoutedChain::layers));
    EXPECT_EQ(std::memcmp(got.data(), host.data(), got.size() * sizeof(float)), 0)
        << "not the host grouping's bits, max difference " << normalized_error(got, host);
    EXPECT_LT(normalized_error(got, cpu), 2e-3) << "three layers routed apart (device and host top-k)";
}

TEST_P(VulkanExpertsById, BatchWithAnIdOutOfRangeIsAnErrorNotAResult) {
    const int64_t hidden = 64, inter = 32, n = 20;
    const ExpertLayer L(DType::Q4, 70, 6, hidden, inter, 1800);
    DeviceExperts *by_id = device_experts(gpu());
    ASSERT_TRUE(by_id->make_experts_resident(L.set()));
    std::vector<int32_t> ids(size_t(n * 2));
    for (int64_t t = 0; t < n; ++t) ids[size_t(2 * t)] = 1, ids[size_t(2 * t + 1)] = t == 7 ? 9 : 2;
    const std::vector<float> h = random_floats(size_t(n * hidden), 1801), w(ids.size(), 0.5f);
    std::vector<float> out(size_t(n * hidden));
    test::expect_error(
        [&] { by_id->routed_swiglu_batch_by_id(70, h.data(), out.data(), n, hidden, ids.data(), w.data(), 2); },
        MST_ERR_BACKEND, {"layer 70", "expert 9", "not on the device"});
    ids[15] = 2;  // the backend goes on working after it
    std::vector<float> want(out.size(), 0.0f);
    host_grouped(gpu(), L, h.data(), want.data(), n, 2, ids, w);
    by_id->routed_swiglu_batch_by_id(70, h.data(), out.data(), n, hidden, ids.data(), w.data(), 2);
    EXPECT_EQ(std::memcmp(out.data(), want.data(), out.size() * sizeof(float)), 0);
}

TEST_P(VulkanExpertsById, BatchesTheDeviceGroupingDeclines) {
    DeviceExperts *by_id = device_experts(gpu());
    const ExpertLayer fine(DType::Q4, 80, 4, 64, 32, 1900), partial(DType::Q4, 81, 4, 64, 32, 1910, {2});
    ASSERT_TRUE(by_id->make_experts_resident(fine.set()));
    ASSERT_TRUE(by_id->make_experts_resident(partial.set()));
    EXPECT_TRUE(by_id->batch_by_id(80, 4, 16));
    EXPECT_FALSE(by_id->batch_by_id(80, 4, 1)) << "a decode step takes routed_swiglu_by_id";
    EXPECT_FALSE(by_id->batch_by_id(81, 4, 16)) << "an expert not on the device";
    EXPECT_FALSE(by_id->batch_by_id(82, 4, 16)) << "a layer not made resident";
    // Switched off (MST_VULKAN_DEVICE_GROUPING=0 at creation): the host grouping.
    gpu().set_device_grouping(false);
    EXPECT_FALSE(by_id->batch_by_id(80, 4, 16));
    gpu().set_device_grouping(true);
    const std::vector<float> h(64 * 16), w(32, 1.0f);
    std::vector<float> out(64 * 16);
    const std::vector<int32_t> ids(32, 0);
    test::expect_error(
        [&] { by_id->routed_swiglu_batch_by_id(81, h.data(), out.data(), 16, 64, ids.data(), w.data(), 2); },
        MST_ERR_INVALID_ARGUMENT, {"layer 81", "batch_by_id"});
}

INSTANTIATE_TEST_SUITE_P(Memory, VulkanExpertsById, ::testing::Values(false, true), test::memory_kind_name);
#endif

}  // namespace
}  // namespace mst
