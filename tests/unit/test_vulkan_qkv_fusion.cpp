// The q/k/v fusion (docs/gpu_decode_kernels.md, "Independent products in one dispatch";
// MST_VULKAN_QKV_FUSION, backends/vulkan/op_fusion.cpp): three one-token products of one
// normed x, of one type, as one matvec_norm_qkv dispatch over all their rows. With the
// fusion on and off the products and the normed x must be the same bits (each row summed by
// the lanes and workgroup row of its own dispatch), the fused dispatch recorded only with it
// on, two commands fewer, and both within test_vulkan_matvec's bounds of the CPU backend.
// Every weight type the one-token product takes, row counts that end inside a workgroup (so
// that k's and v's workgroups must start where their rows do), other product shapes
// (MST_VULKAN_MATVEC_TUNING), with and without subgroup arithmetic. Products of different types, or not three, keep a dispatch each. A decode of
// qwen3_moe_tiny gives the same logits bit for bit with the switch at 0 and 1, and three
// commands fewer a layer with it on (q's norm_rope also rides on k's norm_rope_kv dispatch:
// test_vulkan_kv_append_fusion checks that op by op). On the device's memory and on a discrete GPU's path
// (test::VulkanMemorySuite); without a Vulkan device every test is skipped, saying so.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "cpu_op_fixture.h"
#include "stable_weight.h"
#include "test_weight.h"

#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/command_stream.h"
#include "golden.h"
#include "model/loaded_model.h"
#include "scoped_env.h"
#include "test_paths.h"
#include "vulkan_memory_suite.h"
#endif

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN

using test::float_bits;
using test::norm_weight;
using test::random_floats;
using test::stable_weight;

// test_vulkan_matvec's bounds (the CPU's activations pinned to 16 bits: tests/CMakeLists.txt).
constexpr double kFloatBound = 2e-5;
constexpr double kQuantBound = 3e-4;
const DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8, DType::Q4};

// A decode layer's input norm of a pending x (the residual after an add) and the products
// of its result: the normed x, then each product's rows.
struct Products {
    std::vector<float> out;
    uint64_t commands = 0, barriers = 0;
};

Products run_products(Backend &b, std::span<const WeightView> w, const WeightView &nw, const std::vector<float> &x0,
                      const std::vector<float> &delta) {
    const int64_t cols = w[0].cols;
    auto *vk = dynamic_cast<VulkanBackend *>(&b);
    const uint64_t c0 = vk ? vk->stream().commands() : 0, b0 = vk ? vk->stream().barriers() : 0;
    std::vector<float> x = x0, h(static_cast<size_t>(cols));
    std::vector<std::vector<float>> ys;
    std::vector<float *> yp;
    for (const WeightView &p : w) ys.emplace_back(static_cast<size_t>(p.rows));
    for (auto &y : ys) yp.push_back(y.data());
    {
        BackendBatch batch(b);
        b.add(x.data(), delta.data(), cols);
        b.rms_norm(x.data(), nw, 0.0f, 1e-6f, h.data(), 1, cols);
        b.matmuls_one_input(w, yp, h.data(), 1);
    }
    Products r;
    r.out = h;
    for (const auto &y : ys) r.out.insert(r.out.end(), y.begin(), y.end());
    if (vk) {
        r.commands = vk->stream().commands() - c0;
        r.barriers = vk->stream().barriers() - b0;
    }
    return r;
}

class VulkanQkvFusion : public test::VulkanMemorySuite {
protected:
    void TearDown() override {
        if (!gpus_[GetParam()]) return;
        gpu().set_qkv_fusion(true);
        std::string why;
        gpu().set_matvec_tuning(gpu().default_matvec_tuning(), why);
    }
};

// On `gpu` with the fusion off and on: the same bits; `want_fused` fused dispatches with it
// on (none off), each product's norm folded in either way, the CPU within the bound.
// Returns the commands saved.
int64_t check_same_bits(VulkanBackend &gpu, CpuBackend &cpu, std::span<const WeightView> w, uint64_t want_fused,
                        const std::string &what) {
    const int64_t cols = w[0].cols;
    const WeightView nw = norm_weight(cols, 7);
    const std::vector<float> x0 = random_floats(size_t(cols), 8, -2.0f, 2.0f), d = random_floats(size_t(cols), 9);
    run_products(gpu, w, nw, x0, d);  // the weights' first use (a discrete GPU's copies)
    Products got[2];
    for (const bool on : {false, true}) {
        gpu.set_qkv_fusion(on);
        const uint64_t fused0 = gpu.fused_qkv_products(), norm0 = gpu.fused_norm_products();
        got[on] = run_products(gpu, w, nw, x0, d);
        EXPECT_EQ(gpu.fused_qkv_products() - fused0, on ? want_fused : 0u)
            << what << ", fusion " << on << (on && want_fused ? ": the fusion did not engage" : "");
        EXPECT_EQ(gpu.fused_norm_products() - norm0, w.size()) << what << ": the norm not folded into each product";
    }
    EXPECT_EQ(float_bits(got[1].out), float_bits(got[0].out)) << what << ": the fusion changed a result";
    EXPECT_EQ(got[1].barriers, got[0].barriers) << what << ": the products were one level before";
    const std::vector<float> want = run_products(cpu, w, nw, x0, d).out;
    bool quantized = false;
    for (const WeightView &p : w) quantized = quantized || dtype_is_quantized(p.dtype);
    EXPECT_LT(test::normalized_error(got[1].out, want), quantized ? kQuantBound : kFloatBound) << what;
    return int64_t(got[0].commands) - int64_t(got[1].commands);
}

TEST_P(VulkanQkvFusion, QkvOfEveryTypeTakeOneDispatchAndTheSameBits) {
    // cols: a norm row of one vec4 per invocation and less, a full 4-per-invocation one;
    // rows that end inside a workgroup, and a q as long as the 30B model's.
    for (const int64_t cols : {96, 544, 4096})
        for (const DType t : kTypes) {
            const int64_t q_rows = cols == 4096 ? 4096 : 37;
            const WeightView w[] = {stable_weight(t, q_rows, cols, 1), stable_weight(t, 5, cols, 2),
                                    stable_weight(t, 7, cols, 3)};
            const std::string what = std::string(dtype_name(t)) + " cols " + std::to_string(cols);
            EXPECT_EQ(check_same_bits(gpu(), cpu_, w, 1, what), 2) << what << ": two dispatches fewer";
        }
}

TEST_P(VulkanQkvFusion, ProductsOfDifferentTypesOrNotThreeKeepADispatchEach) {
    const int64_t cols = 256;
    // k and v of another type than q (either way round), one of three apart, two products.
    const DType mixes[][3] = {{DType::Q8, DType::BF16, DType::BF16},
                              {DType::BF16, DType::Q8, DType::Q8},
                              {DType::Q4, DType::Q4, DType::Q8},
                              {DType::F16, DType::F32, DType::F16}};
    for (const auto &m : mixes) {
        const WeightView w[] = {stable_weight(m[0], 64, cols, 21), stable_weight(m[1], 16, cols, 22),
                                stable_weight(m[2], 16, cols, 23)};
        const std::string what = std::string(dtype_name(m[0])) + "/" + std::string(dtype_name(m[1])) + "/" +
                                 std::string(dtype_name(m[2]));
        EXPECT_EQ(check_same_bits(gpu(), cpu_, w, 0, what), 0) << what;
    }
    const WeightView two[] = {stable_weight(DType::Q8, 48, cols, 24), stable_weight(DType::Q8, 48, cols, 25)};
    EXPECT_EQ(check_same_bits(gpu(), cpu_, two, 0, "two q8 products"), 0);
}

TEST_P(VulkanQkvFusion, OtherProductShapesKeepTheBitsToo) {
    // MST_VULKAN_MATVEC_TUNING's dense shapes (LANES x ROWS x PER_LANE, up to the norm's 256
    // invocations): other rows a workgroup (where k's and v's first workgroups start), rows
    // over several subgroups, several rows a lane (lanes of k's and v's 5 and 7 rows and of
    // q's last workgroup partly past their product's last row).
    std::string why;
    for (const MatvecShape s : {MatvecShape{64, 2}, MatvecShape{16, 8}, MatvecShape{32, 8}, MatvecShape{128, 1},
                                MatvecShape{32, 4, 2}, MatvecShape{16, 8, 4}, MatvecShape{128, 1, 3},
                                MatvecShape{32, 2, 8}}) {
        ASSERT_TRUE(gpu().set_matvec_tuning(MatvecTuning::at(s), why)) << s.name() << ": " << why;
        for (const DType t : {DType::BF16, DType::Q8, DType::Q4}) {
            const WeightView w[] = {stable_weight(t, 37, 544, 41), stable_weight(t, 5, 544, 42),
                                    stable_weight(t, 7, 544, 43)};
            const std::string what = std::string(dtype_name(t)) + " shape " + s.name();
            EXPECT_EQ(check_same_bits(gpu(), cpu_, w, 1, what), 2) << what;
        }
    }
}

TEST(VulkanQkvFusionWithoutSubgroups, SharedMemoryReductionsKeepTheBitsToo) {
    std::string why;
    const auto gpu = test::vulkan_backend_without_subgroups(&why);
    if (!gpu) GTEST_SKIP() << "no Vulkan device found: " << why;
    CpuBackend cpu(2, cpu_isa_best());
    // The default shape, and several rows a lane (each row's tree in shared memory in turn).
    for (const MatvecShape s : {gpu->default_matvec_tuning().dense, MatvecShape{32, 4, 4}}) {
        ASSERT_TRUE(gpu->set_matvec_tuning(MatvecTuning::at(s), why)) << s.name() << ": " << why;
        for (const DType t : kTypes) {
            const WeightView w[] = {stable_weight(t, 37, 544, 31), stable_weight(t, 5, 544, 32),
                                    stable_weight(t, 7, 544, 33)};
            const std::string what = std::string(dtype_name(t)) + " without subgroups, shape " + s.name();
            EXPECT_EQ(check_same_bits(*gpu, cpu, w, 1, what), 2) << what;
        }
    }
}

// Greedy decode of qwen3_moe_tiny with MST_VULKAN_QKV_FUSION at `value` (read when the
// backend is made): each decode step's logits, the fused dispatches and the commands.
struct Decoded {
    std::vector<std::vector<float>> logits;
    uint64_t fused = 0, fused_norm_ropes = 0, commands = 0;  // matvec_norm_qkv, norm_rope_qk_kv dispatches
};

// tuning: MST_VULKAN_MATVEC_TUNING's value ("": the default shapes).
Decoded greedy(const char *value, bool separate_memory, bool subgroups = true, const std::string &tuning = "") {
    constexpr int32_t kSteps = 12;  // decode steps after the golden prompt
    const test::ScopedEnv qkv("MST_VULKAN_QKV_FUSION", value);
    const test::ScopedEnv shapes("MST_VULKAN_MATVEC_TUNING", tuning.c_str());
    const test::ScopedEnv memory("MST_VULKAN_SEPARATE_MEMORY", separate_memory ? "1" : "0");
    const test::ScopedEnv no_subgroup("MST_VULKAN_NO_SUBGROUP", subgroups ? "0" : "1");
    const std::string dir = test::data_path("qwen3_moe_tiny");
    LoadOptions options;
    options.backend = "vulkan";
    const auto model = load_model(dir, options);
    auto *vk = dynamic_cast<VulkanBackend *>(model->backend.get());
    EXPECT_NE(vk, nullptr);
    Decoded d;
    if (!vk) return d;
    const test::Golden golden = test::load_golden(dir + "/golden.safetensors");
    ForwardOptions fo;
    fo.experts_per_token = model->experts_per_token;
    const int32_t positions = int32_t(golden.input_ids.size()) + kSteps;
    const auto state = model->model->create_state(positions + 1);
    std::vector<float> logits(size_t(model->config.vocab_size));
    ExpertIoStats io;
    model->model->forward(*state, 0, golden.input_ids, fo, logits.data(), io);
    const uint64_t fused0 = vk->fused_qkv_products(), ropes0 = vk->fused_qk_norm_ropes();
    const uint64_t commands0 = vk->stream().commands();
    for (int32_t pos = int32_t(golden.input_ids.size()); pos < positions; ++pos) {
        const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        const std::vector<int32_t> one{next};
        model->model->forward(*state, pos, one, fo, logits.data(), io);
        d.logits.push_back(logits);
    }
    d.fused = vk->fused_qkv_products() - fused0;
    d.fused_norm_ropes = vk->fused_qk_norm_ropes() - ropes0;
    d.commands = vk->stream().commands() - commands0;
    return d;
}

void expect_same_decode(const Decoded &off, const Decoded &on) {
    ASSERT_FALSE(off.logits.empty());
    EXPECT_EQ(off.fused, 0u);
    EXPECT_EQ(off.fused_norm_ropes, 0u);
    // Every layer of every decode step (qwen3_moe_tiny: 3 layers, bf16 q, k and v; its KV
    // mirror made by the prompt, so that every step appends).
    EXPECT_EQ(on.fused, 3 * on.logits.size()) << "the fusion did not engage in every layer";
    EXPECT_EQ(on.fused_norm_ropes, 3 * on.logits.size()) << "q's norm_rope did not ride on k's in every layer";
    EXPECT_EQ(off.commands - on.commands, 2 * on.fused + on.fused_norm_ropes) << "three commands fewer a layer";
    ASSERT_EQ(on.logits.size(), off.logits.size());
    for (size_t t = 0; t < on.logits.size(); ++t)
        ASSERT_EQ(float_bits(on.logits[t]), float_bits(off.logits[t])) << "decode step " << t << " changed its logits";
}

TEST_P(VulkanQkvFusion, ADecodeOfATinyModelIsTheSameBitForBit) {
    expect_same_decode(greedy("0", GetParam()), greedy("1", GetParam()));
}

// Several rows a lane in every family at the default LANES x ROWS: each row is summed in
// the same order whatever the rows a lane, so the whole decode (q/k/v in one dispatch, the
// router's top-k, the experts) keeps the default's logits bit for bit.
TEST_P(VulkanQkvFusion, ADecodeAtSeveralRowsALaneIsTheDefaultsBitForBit) {
    const MatvecShape d = gpu().default_matvec_tuning().dense;
    const std::string lr = "=" + std::to_string(d.lanes) + "x" + std::to_string(d.rows) + "x";
    const Decoded one = greedy("1", GetParam());
    const Decoded several = greedy("1", GetParam(), true, "dense" + lr + "4,swiglu" + lr + "2,combine" + lr + "3");
    ASSERT_FALSE(one.logits.empty());
    EXPECT_EQ(several.fused, one.fused) << "q/k/v in one dispatch in every layer at both";
    ASSERT_EQ(several.logits.size(), one.logits.size());
    for (size_t t = 0; t < one.logits.size(); ++t)
        ASSERT_EQ(float_bits(several.logits[t]), float_bits(one.logits[t])) << "decode step " << t;
}

TEST(VulkanQkvFusionWithoutSubgroups, ADecodeOfATinyModelIsTheSameBitForBit) {
    std::string why;
    if (!test::vulkan_backend_without_subgroups(&why)) GTEST_SKIP() << "no Vulkan device found: " << why;
    expect_same_decode(greedy("0", false, false), greedy("1", false, false));
}

INSTANTIATE_TEST_SUITE_P(Memory, VulkanQkvFusion, ::testing::Values(false, true), test::memory_kind_name);

#else

TEST(VulkanQkvFusion, NeedsTheVulkanBackend) { GTEST_SKIP() << "this build has no Vulkan backend"; }

#endif

}  // namespace
}  // namespace mst
