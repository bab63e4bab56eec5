// Op conformance of the Vulkan backend: every Backend op against the CPU backend on
// random inputs, with a stated bound on the normalised error (max |vulkan - cpu| / max
// |cpu|) per op and weight type, at odd sizes (columns that no workgroup size divides,
// one token and several, GQA ratios, sliding windows, sinks). The error is measured
// against the CPU backend, itself tested against double-precision references
// (test_cpu_op_*.cpp). Without a Vulkan device every test is skipped, saying so.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "attention_case.h"
#include "cpu_op_fixture.h"
#include "quant_test_data.h"
#include "scoped_env.h"
#include "test_weight.h"
#include "vulkan_suite.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/quant.h"

#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/vulkan_backend.h"
#endif

namespace mst {
namespace {

// Bounds. Float weights: both sides sum float32 products, in different orders. Q8/Q4:
// the CPU rounds activations to 16-bit integers per block, the GPU does not. Transcendental
// functions on a GPU are accurate to a few ulp.
constexpr double kFloatBound = 2e-5;
constexpr double kQuantBound = 3e-4;
constexpr double kElementwiseBound = 2e-5;
constexpr double kRecurrentBound = 1e-4;

using test::normalized_error;
using test::random_floats;
using test::TestWeight;


class VulkanOps : public test::VulkanSuite {
protected:
    static void SetUpTestSuite() {
        BackendOptions o;
        o.gpu_expert_cache_bytes = 64ull << 20;
        open_backend(o);
    }

    Backend &gpu() { return *vulkan_; }
    CpuBackend cpu_{2, cpu_isa_best()};
};

struct MatmulCase {
    int64_t rows, cols, n_tokens;
};

TEST_F(VulkanOps, MatmulEveryWeightType) {
    const MatmulCase cases[] = {{1, 1, 1}, {7, 33, 1}, {67, 100, 3}, {130, 257, 5}, {64, 512, 9}, {300, 70, 2}};
    const MatmulCase mx_cases[] = {{1, 32, 1}, {7, 64, 1}, {67, 96, 3}, {130, 288, 5}, {33, 2880, 2}};
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8, DType::Q4, DType::MXFP4}) {
        const bool mx = t == DType::MXFP4;
        const size_t n_cases = mx ? std::size(mx_cases) : std::size(cases);
        for (size_t i = 0; i < n_cases; ++i) {
            const MatmulCase c = mx ? mx_cases[i] : cases[i];
            const TestWeight w(t, c.rows, c.cols, uint32_t(100 + i));
            const std::vector<float> x = random_floats(size_t(c.n_tokens * c.cols), uint32_t(7 + i));
            std::vector<float> want(size_t(c.n_tokens * c.rows)), got(want.size(), NAN);
            cpu_.matmul(w.view, x.data(), want.data(), c.n_tokens);
            gpu().matmul(w.view, x.data(), got.data(), c.n_tokens);
            const double bound = dtype_is_quantized(t) ? kQuantBound : kFloatBound;
            EXPECT_LT(normalized_error(got, want), bound)
                << dtype_name(t) << " " << c.rows << "x" << c.cols << " n_tokens " << c.n_tokens;
        }
    }
}

// A GGUF-typed weight decoded by core's reference dequantizer (GGML's own float operations)
// to an F32 weight: what the GGML shaders must compute on without making this copy.
struct DecodedWeight {
    std::vector<float> values;
    WeightView view;

    explicit DecodedWeight(const TestWeight &q)
        : values(test::dequantize_matrix(q.view.dtype, q.bytes, q.view.rows, q.view.cols)), view(q.view) {
        view.dtype = DType::F32;
        view.data = values.data();
        view.expert_key = 0;
    }
};

// max |vulkan - ref| / max |ref| of one GPU matmul of a weight of type t against
// dequantize-then-multiply in double precision.
double gpu_error_against_dequantized(Backend &gpu, DType t, int64_t rows, int64_t cols, int64_t n_tokens, uint32_t seed) {
    const TestWeight w(t, rows, cols, seed);
    const DecodedWeight wd(w);
    const std::vector<float> x = random_floats(size_t(n_tokens * cols), seed + 1);
    std::vector<float> want(size_t(n_tokens * rows)), got(want.size(), NAN);
    for (int64_t tok = 0; tok < n_tokens; ++tok)
        for (int64_t r = 0; r < rows; ++r) {
            double sum = 0.0;
            for (int64_t k = 0; k < cols; ++k) sum += double(wd.values[size_t(r * cols + k)]) * x[size_t(tok * cols + k)];
            want[size_t(tok * rows + r)] = float(sum);
        }
    gpu.matmul(w.view, x.data(), got.data(), n_tokens);
    return normalized_error(got, want);
}

// The GGML legacy block types (shaders/matmul_ggml.comp) against dequantize-then-multiply
// in double precision: the shader multiplies float activations by the decoded weights
// exactly as stored, so only float32 summation separates it from the reference. Rows not
// a multiple of the workgroup's, 1 to 9 blocks per row, token counts that leave a partial
// tile (NT = 4) and several tiles. Bound: max |vulkan - ref| / max |ref|.
TEST_F(VulkanOps, MatmulGgmlLegacyTypesMatchDequantizedReference) {
    constexpr double kBound = 2e-5;
    const struct { int64_t rows, blocks, n_tokens; } cases[] = {{1, 1, 1}, {5, 3, 3}, {67, 2, 17}, {130, 9, 5}, {33, 4, 2}};
    for (DType t : {DType::GGML_Q4_0, DType::GGML_Q5_0, DType::GGML_Q5_1, DType::GGML_IQ4_NL, DType::GGML_IQ4_XS,
                    DType::GGML_MXFP4}) {
        uint32_t seed = 500;
        for (const auto &c : cases) {
            const int64_t cols = c.blocks * int64_t(dtype_block_elems(t));
            EXPECT_LT(gpu_error_against_dequantized(gpu(), t, c.rows, cols, c.n_tokens, seed), kBound)
                << dtype_name(t) << " " << c.rows << "x" << cols << " n_tokens " << c.n_tokens;
            seed += 2;
        }
    }
}

constexpr DType kKQuantTypes[] = {DType::GGML_Q2_K, DType::GGML_Q3_K, DType::GGML_Q4_K, DType::GGML_Q5_K,
                                  DType::GGML_Q6_K};

// The K-quants (shaders/matmul_kquant.comp) the same way: one to nine super-blocks per
// row, rows ending inside a super-block (100, 300: moestream's packed files pad them, and
// the shader must not read activations past the row), one token (decode) and several
// tiles of tokens (prefill), rows no workgroup divides. The shader, too, multiplies float
// activations by the weights GGML's decoder gives, so only float32 summation separates it
// from the reference: measured 3.0e-7 to 4.1e-7 on lavapipe, bound at about 5x that.
TEST_F(VulkanOps, MatmulKQuantsMatchDequantizedReference) {
    constexpr double kBound = 2e-6;
    const struct { int64_t rows, cols, n_tokens; } cases[] = {{1, 256, 1},  {5, 768, 3},   {67, 512, 17},
                                                              {130, 2304, 1}, {33, 100, 2}, {7, 300, 5}};
    for (DType t : kKQuantTypes) {
        uint32_t seed = 700;
        double worst = 0.0;
        for (const auto &c : cases) {
            const double err = gpu_error_against_dequantized(gpu(), t, c.rows, c.cols, c.n_tokens, seed);
            EXPECT_LT(err, kBound) << dtype_name(t) << " " << c.rows << "x" << c.cols << " n_tokens " << c.n_tokens;
            worst = std::max(worst, err);
            seed += 2;
        }
        std::printf("%s: worst error %.2e (bound %.0e)\n", std::string(dtype_name(t)).c_str(), worst, kBound);
    }
}

// Routed experts in K-quants (op_experts.cpp, the path a K-quant GGUF model's experts take)
// against the same experts decoded to F32 on the CPU: the float weights make the CPU's
// products exact up to float32 summation, so the bound is a float one. Uneven uses, one
// expert unused, a hidden size that is not a whole super-block, and a second call served
// by the GPU expert cache.
TEST_F(VulkanOps, RoutedSwigluKQuantExpertsMatchDecodedExperts) {
    constexpr double kBound = 1e-4;
    const int64_t hidden = 320, inter = 96, n_tokens = 5;
    const std::vector<std::vector<int64_t>> tokens = {{0, 2, 4}, {}, {1}, {0, 1, 2, 3, 4}};
    for (DType t : kKQuantTypes) {
        std::vector<std::unique_ptr<TestWeight>> parts;
        std::vector<std::unique_ptr<DecodedWeight>> decoded;
        std::vector<SwigluExpertUse> uses(tokens.size()), decoded_uses(tokens.size());
        std::vector<std::vector<float>> weights;
        for (size_t e = 0; e < tokens.size(); ++e) {
            for (int p = 0; p < 3; ++p) {
                parts.push_back(std::make_unique<TestWeight>(t, p < 2 ? inter : hidden, p < 2 ? hidden : inter,
                                                             uint32_t(900 + 3 * e + size_t(p))));
                parts.back()->view.expert_key = make_expert_key(2, int64_t(e), p);
                decoded.push_back(std::make_unique<DecodedWeight>(*parts.back()));
            }
            weights.push_back(random_floats(tokens[e].size(), uint32_t(950 + e), 0.1f, 1.0f));
            const size_t i = 3 * e;
            uses[e] = SwigluExpertUse{parts[i]->view, parts[i + 1]->view, parts[i + 2]->view, tokens[e].data(),
                                      weights[e].data(), int64_t(tokens[e].size())};
            decoded_uses[e] = SwigluExpertUse{decoded[i]->view, decoded[i + 1]->view, decoded[i + 2]->view,
                                              tokens[e].data(), weights[e].data(), int64_t(tokens[e].size())};
        }
        const std::vector<float> h = random_floats(size_t(n_tokens * hidden), 907);
        const std::vector<float> start = random_floats(size_t(n_tokens * hidden), 908);
        std::vector<float> want = start;
        cpu_.routed_swiglu(h.data(), want.data(), n_tokens, hidden, decoded_uses.data(), decoded_uses.size());
        for (int call = 0; call < 2; ++call) {
            std::vector<float> got = start;
            gpu().routed_swiglu(h.data(), got.data(), n_tokens, hidden, uses.data(), uses.size());
            EXPECT_LT(normalized_error(got, want), kBound) << dtype_name(t) << " call " << call;
        }
    }
}

// compressed-tensors pack-quantized INT4 / INT8 (core/packed_int.h): random words and bf16
// scales, against the CPU (whose kernels are checked against dequantise-then-multiply in
// test_cpu_op_matmul_packed_int). Odd counts of groups of 32, a group the words do not
// divide (12), one scale per row (a channel of 100, its last word padded), and an expert
// part (by key) computed twice.
TEST_F(VulkanOps, MatmulPackedIntegers) {
    struct Case {
        int bits;
        int64_t rows, cols, group, n_tokens;
    };
    const Case cases[] = {{4, 1, 96, 32, 1},   {4, 67, 160, 32, 3},  {4, 130, 224, 32, 5}, {4, 33, 7168, 32, 2},
                          {4, 5, 36, 12, 2},   {4, 3, 100, 100, 1},  {8, 7, 96, 32, 4},    {8, 9, 224, 224, 6},
                          {8, 4, 36, 12, 1}};
    uint32_t seed = 300;
    for (const Case &c : cases) {
        std::mt19937 rng(seed++);
        const int64_t words = (c.cols * c.bits + 31) / 32;
        std::vector<uint32_t> packed(size_t(c.rows * words));
        for (uint32_t &w : packed) w = uint32_t(rng());
        std::vector<uint16_t> scales(size_t(c.rows * (c.cols / c.group)));
        for (uint16_t &s : scales) s = f32_to_bf16(0.001f + float(rng() % 1000) * 1e-5f);
        WeightView w{c.bits == 4 ? DType::PACKED_I4 : DType::PACKED_I8, packed.data(), c.rows, c.cols};
        w.scales = reinterpret_cast<const uint8_t *>(scales.data());
        w.group_size = c.group;
        const std::vector<float> x = random_floats(size_t(c.n_tokens * c.cols), seed++);
        std::vector<float> want(size_t(c.n_tokens * c.rows)), got(want.size(), NAN);
        cpu_.matmul(w, x.data(), want.data(), c.n_tokens);
        for (int call = 0; call < 2; ++call) {
            WeightView v = w;
            v.expert_key = call == 1 ? make_expert_key(2, int64_t(seed), 0) : 0;
            std::fill(got.begin(), got.end(), NAN);
            gpu().matmul(v, x.data(), got.data(), c.n_tokens);
            EXPECT_LT(normalized_error(got, want), kFloatBound)
                << "INT" << c.bits << " " << c.rows << "x" << c.cols << " group " << c.group << " call " << call;
        }
    }
}

TEST_F(VulkanOps, MatmulStableAndStreamedWeightsStayCorrect) {
    // A stable weight is uploaded once; an expert part by its key; either must give the
    // same product on every call, and a transient view must follow its bytes.
    TestWeight w(DType::Q4, 40, 96, 5);
    const std::vector<float> x = random_floats(96 * 2, 6);
    std::vector<float> want(80), got(80);
    cpu_.matmul(w.view, x.data(), want.data(), 2);
    for (int pass = 0; pass < 2; ++pass) {
        WeightView v = w.view;
        v.stable = pass == 0;
        v.expert_key = pass == 1 ? make_expert_key(3, 4, 0) : 0;
        for (int call = 0; call < 3; ++call) {
            std::fill(got.begin(), got.end(), NAN);
            gpu().matmul(v, x.data(), got.data(), 2);
            EXPECT_LT(normalized_error(got, want), kQuantBound) << "pass " << pass << " call " << call;
        }
    }
    TestWeight other(DType::Q4, 40, 96, 9);
    std::memcpy(w.bytes.data(), other.bytes.data(), w.bytes.size());  // a transient view's bytes change
    cpu_.matmul(w.view, x.data(), want.data(), 2);
    gpu().matmul(w.view, x.data(), got.data(), 2);
    EXPECT_LT(normalized_error(got, want), kQuantBound);
}

TEST_F(VulkanOps, MatmulBlockFp8) {
    struct Case {
        int64_t rows, cols, n_tokens;
        int32_t br, bc;
    };
    for (const Case c : {Case{13, 37, 1, 8, 16}, Case{64, 256, 3, 128, 128}, Case{130, 300, 5, 32, 64}}) {
        const TestWeight w(DType::F8_E4M3, c.rows, c.cols, 11);
        const int64_t sr = (c.rows + c.br - 1) / c.br, sc = (c.cols + c.bc - 1) / c.bc;
        const std::vector<float> scales = random_floats(size_t(sr * sc), 12, 0.001f, 0.01f);
        const WeightView s{DType::F32, scales.data(), sr, sc};
        const std::vector<float> x = random_floats(size_t(c.n_tokens * c.cols), 13);
        std::vector<float> want(size_t(c.n_tokens * c.rows)), got(want.size(), NAN);
        cpu_.matmul_block_fp8(w.view, s, c.br, c.bc, x.data(), want.data(), c.n_tokens);
        gpu().matmul_block_fp8(w.view, s, c.br, c.bc, x.data(), got.data(), c.n_tokens);
        EXPECT_LT(normalized_error(got, want), kFloatBound) << c.rows << "x" << c.cols << " block " << c.br << "x" << c.bc;
    }
}

TEST_F(VulkanOps, MatmulXwAndTransposed) {
    for (DType t : {DType::F32, DType::F16, DType::BF16})
        for (const MatmulCase c : {MatmulCase{1, 1, 1}, MatmulCase{33, 70, 1}, MatmulCase{100, 129, 5}}) {
            const TestWeight w(t, c.rows, c.cols, 21);
            const std::vector<float> x = random_floats(size_t(c.n_tokens * c.rows), 22);
            std::vector<float> want(size_t(c.n_tokens * c.cols)), got(want.size(), NAN);
            cpu_.matmul_xw(w.view, x.data(), want.data(), c.n_tokens);
            gpu().matmul_xw(w.view, x.data(), got.data(), c.n_tokens);
            EXPECT_LT(normalized_error(got, want), kFloatBound) << "xw " << dtype_name(t) << " " << c.rows << "x" << c.cols;
            std::fill(got.begin(), got.end(), NAN);
            cpu_.matmul_transposed(w.view, x.data(), want.data(), c.n_tokens);
            gpu().matmul_transposed(w.view, x.data(), got.data(), c.n_tokens);
            EXPECT_LT(normalized_error(got, want), kFloatBound) << "transposed " << dtype_name(t);
        }
}

// rms_norm (both offsets), rms_norm_gated and l2_norm against the CPU at each dim.
void check_norms(CpuBackend &cpu, Backend &gpu, std::initializer_list<int64_t> dims) {
    for (DType t : {DType::F32, DType::BF16})
        for (int64_t dim : dims)
            for (int64_t rows : {1, 5}) {
                const TestWeight w(t, 1, dim, 31);
                const std::vector<float> x = random_floats(size_t(rows * dim), 32, -3.0f, 3.0f);
                const std::vector<float> gate = random_floats(size_t(rows * dim), 33, -4.0f, 4.0f);
                for (float offset : {0.0f, 1.0f}) {
                    std::vector<float> want(x.size()), got(x.size(), NAN);
                    cpu.rms_norm(x.data(), w.view, offset, 1e-6f, want.data(), rows, dim);
                    gpu.rms_norm(x.data(), w.view, offset, 1e-6f, got.data(), rows, dim);
                    EXPECT_LT(normalized_error(got, want), kElementwiseBound) << "rms_norm dim " << dim << " offset " << offset;
                }
                std::vector<float> want(x.size()), got(x.size(), NAN);
                cpu.rms_norm_gated(x.data(), gate.data(), w.view, 1e-6f, want.data(), rows, dim);
                gpu.rms_norm_gated(x.data(), gate.data(), w.view, 1e-6f, got.data(), rows, dim);
                EXPECT_LT(normalized_error(got, want), kElementwiseBound) << "rms_norm_gated dim " << dim;
                want = x;
                got = x;
                cpu.l2_norm(want.data(), rows, dim, 1e-6f);
                gpu.l2_norm(got.data(), rows, dim, 1e-6f);
                EXPECT_LT(normalized_error(got, want), kElementwiseBound) << "l2_norm dim " << dim;
            }
}

// Rows of whole vec4s up to 4096 wide take norm_vec4.comp (2 types x 2 row counts x 4
// norms per dim), the others norm.comp.
TEST_F(VulkanOps, Norms) {
    const uint64_t before = vulkan_->norm_vec4_dispatches();
    check_norms(cpu_, gpu(), {7, 128, 300, 2048, 4096, 4100});
    EXPECT_EQ(vulkan_->norm_vec4_dispatches(), before + 4 * 2 * 2 * 4);
}

TEST_F(VulkanOps, NormsWithoutVec4Kernel) {
    vulkan_->set_norm_vec4(false);
    const uint64_t before = vulkan_->norm_vec4_dispatches();
    check_norms(cpu_, gpu(), {128, 2048});
    EXPECT_EQ(vulkan_->norm_vec4_dispatches(), before);
    vulkan_->set_norm_vec4(true);
}

// norm_vec4's sum through shared memory (norm_vec4, where the fixture's device takes norm_vec4_sg).
TEST_F(VulkanOps, NormsVec4WithoutSubgroups) {
    const test::ScopedEnv no_subgroup("MST_VULKAN_NO_SUBGROUP", "1");
    VulkanBackend plain(BackendOptions{}, false);
    check_norms(cpu_, plain, {4, 128, 2048, 4096});
    EXPECT_EQ(plain.norm_vec4_dispatches(), 4u * 2 * 2 * 4);
}

TEST_F(VulkanOps, RopeVariants) {
    struct Case {
        int64_t n_tokens, n_heads, head_dim;
        int32_t rotary_dim;
        bool interleaved;
        float factor;
        int32_t pos0;
    };
    for (const Case c : {Case{1, 4, 16, 16, false, 1.0f, 0}, Case{5, 3, 64, 32, false, 1.0f, 4000},
                         Case{3, 2, 64, 64, true, 1.2f, 17}, Case{2, 5, 24, 8, true, 1.0f, 100000}}) {
        std::vector<float> inv_freq(size_t(c.rotary_dim / 2));
        for (size_t i = 0; i < inv_freq.size(); ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * float(i) / float(c.rotary_dim));
        RopeParams p;
        p.rotary_dim = c.rotary_dim;
        p.inv_freq = inv_freq.data();
        p.attention_factor = c.factor;
        p.interleaved = c.interleaved;
        std::vector<int32_t> positions(size_t(c.n_tokens));
        std::iota(positions.begin(), positions.end(), c.pos0);
        const std::vector<float> x = random_floats(size_t(c.n_tokens * c.n_heads * c.head_dim), 41);
        std::vector<float> want = x, got = x;
        cpu_.rope(want.data(), c.n_tokens, c.n_heads, c.head_dim, positions.data(), p);
        gpu().rope(got.data(), c.n_tokens, c.n_heads, c.head_dim, positions.data(), p);
        EXPECT_LT(normalized_error(got, want), kElementwiseBound)
            << "rope head_dim " << c.head_dim << " rotary " << c.rotary_dim << " interleaved " << c.interleaved;
    }
}

// rope keeps its last cos/sin table: q and k (same positions and frequencies) build it
// once; another position, frequency or factor builds a new one, and results stay the CPU's.
TEST_F(VulkanOps, RopeTableReuse) {
    const int64_t n_tokens = 6, n_heads = 3, head_dim = 32;
    std::vector<float> inv_freq(16);
    for (size_t i = 0; i < inv_freq.size(); ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * float(i) / 32.0f);
    RopeParams p;
    p.rotary_dim = 32;
    p.inv_freq = inv_freq.data();
    std::vector<int32_t> positions(static_cast<size_t>(n_tokens));
    std::iota(positions.begin(), positions.end(), 50);
    const std::vector<float> x = random_floats(size_t(n_tokens * n_heads * head_dim), 43);
    auto check = [&](const char *what, uint64_t built) {
        const uint64_t before = vulkan_->rope_tables_built();
        std::vector<float> want = x, got = x;
        cpu_.rope(want.data(), n_tokens, n_heads, head_dim, positions.data(), p);
        gpu().rope(got.data(), n_tokens, n_heads, head_dim, positions.data(), p);
        EXPECT_LT(normalized_error(got, want), kElementwiseBound) << what;
        EXPECT_EQ(vulkan_->rope_tables_built() - before, built) << what;
    };
    check("first", 1);
    check("same positions", 0);
    positions[3] = 7;
    check("one position changed", 1);
    inv_freq[15] *= 2.0f;
    check("one frequency changed", 1);
    p.attention_factor = 1.5f;
    check("factor changed", 1);
    check("same again", 0);
}

using test::AttentionCase;

void run_attention(Backend &cpu, Backend &gpu, const AttentionCase &c, uint64_t cache_id) {
    EXPECT_LT(test::attention_error(cpu, gpu, c, 51, cache_id), kFloatBound)
        << "n_tokens " << c.n_tokens << " heads " << c.n_heads << "/" << c.n_kv_heads << " pos0 " << c.pos0
        << " window " << c.window << " sinks " << c.sinks << " cache_id " << cache_id;
}

TEST_F(VulkanOps, AttentionGqaWindowsSinks) {
    const AttentionCase cases[] = {
        {1, 4, 2, 16, 16, 5, 0, false, 0},   {7, 6, 3, 24, 24, 3, 4, false, 0}, {3, 8, 1, 64, 64, 40, 0, true, 0},
        {1, 8, 8, 33, 20, 300, 0, false, 7}, {9, 4, 2, 128, 128, 0, 3, true, 5}, {2, 16, 4, 64, 64, 500, 128, false, 0},
    };
    for (const AttentionCase &c : cases) run_attention(cpu_, gpu(), c, 0);
}

// Prefill-sized calls (16 queries or more, heads up to 128) take the blocked kernel
// (shaders/attention_blocked.comp): query blocks that end inside a block of 16, key
// blocks of 32 cut by the causal mask and by windows, sinks, GQA, v narrower than k.
TEST_F(VulkanOps, PrefillAttentionBlockedMatchesCpu) {
    auto *vk = dynamic_cast<VulkanBackend *>(vulkan_);
    ASSERT_NE(vk, nullptr);
    // The blocked kernel itself: where the device has cooperative matrices these calls
    // would take attention_flash.comp (test_vulkan_flash_attention tests that one).
    const VulkanBackend::FlashAttention flash = vk->flash_attention();
    vk->set_flash_attention(VulkanBackend::FlashAttention::off);
    const AttentionCase cases[] = {
        {17, 8, 2, 128, 128, 0, 0, false, 0}, {40, 4, 4, 64, 64, 23, 0, true, 0}, {70, 8, 2, 80, 72, 5, 20, false, 3},
        {33, 6, 3, 24, 24, 100, 7, true, 0},  {16, 32, 4, 128, 128, 0, 0, false, 0}, {65, 4, 1, 128, 128, 64, 40, true, 0},
    };
    const uint64_t before = vk->blocked_attention_dispatches();
    for (const AttentionCase &c : cases) run_attention(cpu_, gpu(), c, 0);
    run_attention(cpu_, gpu(), cases[0], 9001);  // the mirrored cache
    EXPECT_EQ(vk->blocked_attention_dispatches(), before + std::size(cases) + 1);
    // Its tiles fit the device's shared memory (lavapipe's 32 KiB takes 16 keys a block).
    const uint32_t keys = vk->blocked_attention_keys_per_block();
    const uint32_t bytes = 4 * ((16 + 2 * keys) * 129 + 16 * keys);
    std::printf("  blocked attention: %u keys a block, %u bytes of shared memory, the device gives %u\n", keys, bytes,
                vk->context().properties().limits.maxComputeSharedMemorySize);
    EXPECT_LE(bytes, vk->context().properties().limits.maxComputeSharedMemorySize);
    const uint64_t after = vk->blocked_attention_dispatches();
    run_attention(cpu_, gpu(), AttentionCase{15, 4, 2, 64, 64, 0, 0, false, 0}, 0);  // below 16: attention.comp
    run_attention(cpu_, gpu(), AttentionCase{20, 4, 2, 160, 160, 0, 0, false, 0}, 0);  // heads past 128: attention.comp
    EXPECT_EQ(vk->blocked_attention_dispatches(), after);
    vk->set_flash_attention(flash);
}

// Steps of up to 8 queries against two or more blocks of 32 positions take the split
// decode kernels (shaders/attention_split*.comp): contexts that end one key into a second
// block, many blocks, odd head counts and sizes, GQA, windows that span one block or
// several, sinks, v narrower than k, few-token steps whose first queries fill fewer blocks
// than the last, MLA's latent rows. One block, or more queries, keep the other kernels.
constexpr AttentionCase kSplitCases[] = {
        {1, 4, 2, 16, 16, 32, 0, false, 0},    {1, 5, 5, 33, 20, 200, 0, true, 3}, {1, 6, 3, 24, 24, 516, 0, false, 0},
        {1, 7, 1, 80, 72, 129, 0, true, 0},    {1, 32, 4, 128, 128, 511, 0, false, 0},
        {1, 8, 2, 64, 64, 700, 100, true, 0},  {1, 4, 2, 128, 128, 1000, 65, false, 0},
        {3, 6, 2, 40, 40, 250, 0, true, 0},    {8, 4, 2, 64, 64, 28, 0, false, 0}, {8, 9, 3, 96, 96, 300, 70, true, 1},
        {2, 2, 1, 1024, 512, 140, 0, false, 0},
};

TEST_F(VulkanOps, SplitDecodeAttentionMatchesCpu) {
    auto *vk = dynamic_cast<VulkanBackend *>(vulkan_);
    ASSERT_NE(vk, nullptr);
    const uint64_t before = vk->split_attention_dispatches(), rows_before = vk->split_rows_dispatches();
    for (const AttentionCase &c : kSplitCases) run_attention(cpu_, gpu(), c, 0);
    run_attention(cpu_, gpu(), kSplitCases[4], 9002);  // the mirrored cache
    EXPECT_EQ(vk->split_attention_dispatches(), before + std::size(kSplitCases) + 1);
    // The fixture's device has subgroups: rows of whole vec4s took attention_split_rows.comp
    // (the odd head sizes and strides, attention_split_sg).
    EXPECT_GE(vk->split_rows_dispatches(), rows_before + 8);
    EXPECT_LT(vk->split_rows_dispatches(), rows_before + std::size(kSplitCases) + 1);
    const uint64_t after = vk->split_attention_dispatches();
    const AttentionCase unsplit[] = {
        {1, 4, 2, 64, 64, 31, 0, false, 0},    // 32 keys: one block
        {1, 4, 2, 64, 64, 900, 32, true, 0},   // a window of one block
        {9, 4, 2, 64, 64, 300, 0, false, 0},   // more than 8 queries
    };
    for (const AttentionCase &c : unsplit) run_attention(cpu_, gpu(), c, 0);
    EXPECT_EQ(vk->split_attention_dispatches(), after);
}

// The split's first pass with an invocation per key (attention_split_sg.comp), where the
// fixture's device takes attention_split_rows.comp.
TEST_F(VulkanOps, SplitDecodeAttentionPerKeyMatchesCpu) {
    auto *vk = dynamic_cast<VulkanBackend *>(vulkan_);
    ASSERT_NE(vk, nullptr);
    vk->set_split_rows(false);
    const uint64_t rows_before = vk->split_rows_dispatches();
    for (const AttentionCase &c : kSplitCases) run_attention(cpu_, gpu(), c, 0);
    EXPECT_EQ(vk->split_rows_dispatches(), rows_before);
    vk->set_split_rows(true);
}

// The split's reductions without subgroup operations (attention_split, where the fixture's
// device takes attention_split_sg).
TEST_F(VulkanOps, SplitDecodeAttentionWithoutSubgroupsMatchesCpu) {
    const test::ScopedEnv no_subgroup("MST_VULKAN_NO_SUBGROUP", "1");
    VulkanBackend plain(BackendOptions{}, false);
    for (const AttentionCase &c : kSplitCases) run_attention(cpu_, plain, c, 0);
    EXPECT_EQ(plain.split_attention_dispatches(), std::size(kSplitCases));
}

// MST_VULKAN_SPLIT_ATTENTION=0 keeps attention.comp for decode (to compare the two on a
// GPU), =N splits from N positions of context; anything else is an error naming the variable.
TEST_F(VulkanOps, SplitAttentionByEnvironment) {
    ::setenv("MST_VULKAN_SPLIT_ATTENTION", "0", 1);
    {
        VulkanBackend off(BackendOptions{}, false);
        run_attention(cpu_, off, AttentionCase{1, 8, 2, 64, 64, 400, 0, true, 0}, 0);
        EXPECT_EQ(off.split_attention_dispatches(), 0u);
    }
    ::setenv("MST_VULKAN_SPLIT_ATTENTION", "200", 1);
    {
        VulkanBackend from200(BackendOptions{}, false);
        run_attention(cpu_, from200, AttentionCase{1, 8, 2, 64, 64, 198, 0, true, 0}, 0);  // 199 positions
        EXPECT_EQ(from200.split_attention_dispatches(), 0u);
        run_attention(cpu_, from200, AttentionCase{1, 8, 2, 64, 64, 199, 0, true, 0}, 0);  // 200
        EXPECT_EQ(from200.split_attention_dispatches(), 1u);
    }
    for (const char *bad : {"yes", "-1", "12x"}) {
        ::setenv("MST_VULKAN_SPLIT_ATTENTION", bad, 1);
        try {
            VulkanBackend b(BackendOptions{}, false);
            ADD_FAILURE() << "a backend was created with MST_VULKAN_SPLIT_ATTENTION=" << bad;
        } catch (const Error &e) {
            EXPECT_EQ(e.code(), MST_ERR_INVALID_ARGUMENT);
            EXPECT_NE(std::string(e.what()).find("MST_VULKAN_SPLIT_ATTENTION='" + std::string(bad) + "'"),
                      std::string::npos)
                << e.what();
        }
    }
    ::unsetenv("MST_VULKAN_SPLIT_ATTENTION");
}

TEST_F(VulkanOps, AttentionMirroredCacheFollowsAppends) {
    // A cache with an id is kept on the device; each call appends positions, as a model
    // stores then attends. Every step must match the CPU reading the host cache.
    const int32_t n_ctx = 40, heads = 4, kv = 2, hd = 16;
    const int64_t stride = int64_t(n_ctx) * hd;
    std::vector<float> k(size_t(kv * stride), 0.0f), v(size_t(kv * stride), 0.0f);
    const std::vector<float> fresh_k = random_floats(k.size(), 61), fresh_v = random_floats(v.size(), 62);
    const uint64_t id = 0x7654321;
    int32_t pos = 0;
    for (int32_t n : {5, 1, 1, 7, 1}) {
        for (int32_t h = 0; h < kv; ++h)
            for (int32_t j = pos; j < pos + n; ++j)
                for (int32_t d = 0; d < hd; ++d) {
                    const size_t i = size_t(h * stride + j * hd + d);
                    k[i] = fresh_k[i];
                    v[i] = fresh_v[i];
                }
        const std::vector<float> q = random_floats(size_t(n * heads * hd), uint32_t(63 + pos));
        AttentionParams p;
        p.n_tokens = n;
        p.n_heads = heads;
        p.n_kv_heads = kv;
        p.head_dim = hd;
        p.v_head_dim = hd;
        p.pos0 = pos;
        p.kv_stride = stride;
        p.scale = 0.25f;
        p.cache_id = id;
        std::vector<float> want(size_t(n * heads * hd)), got(want.size(), NAN);
        cpu_.attention(q.data(), k.data(), v.data(), want.data(), p);
        gpu().attention(q.data(), k.data(), v.data(), got.data(), p);
        EXPECT_LT(normalized_error(got, want), kFloatBound) << "pos0 " << pos;
        pos += n;
    }
}

TEST_F(VulkanOps, LatentAttention) {
    for (int32_t n_tokens : {1, 4})
        for (int32_t pos0 : {0, 6, 100}) {
            LatentAttentionParams p;
            p.n_tokens = n_tokens;
            p.n_heads = 5;
            p.latent_dim = 32;
            p.rope_dim = 8;
            p.pos0 = pos0;
            p.scale = 0.15f;
            const int64_t row = p.latent_dim + p.rope_dim, n_ctx = pos0 + n_tokens;
            const std::vector<float> q = random_floats(size_t(n_tokens * p.n_heads * row), 71);
            const std::vector<float> cache = random_floats(size_t(n_ctx * row), 72);
            std::vector<float> want(size_t(n_tokens * p.n_heads * p.latent_dim)), got(want.size(), NAN);
            cpu_.latent_attention(q.data(), cache.data(), want.data(), p);
            gpu().latent_attention(q.data(), cache.data(), got.data(), p);
            EXPECT_LT(normalized_error(got, want), kFloatBound) << "n_tokens " << n_tokens << " pos0 " << pos0;
        }
}

TEST_F(VulkanOps, ElementwiseGates) {
    for (int64_t n : {1, 255, 1000}) {
        const std::vector<float> a = random_floats(size_t(n), 81, -6.0f, 6.0f), b = random_floats(size_t(n), 82);
        std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n), NAN);
        cpu_.silu_mul(a.data(), b.data(), want.data(), n);
        gpu().silu_mul(a.data(), b.data(), got.data(), n);
        EXPECT_LT(normalized_error(got, want), kElementwiseBound) << "silu_mul " << n;
    }
    for (int64_t gate_dim : {1, 4, 24}) {
        const int64_t rows = 3, dim = 24;
        const std::vector<float> x = random_floats(size_t(rows * dim), 83);
        const std::vector<float> g = random_floats(size_t(rows * gate_dim), 84, -5.0f, 5.0f);
        std::vector<float> want = x, got = x;
        cpu_.sigmoid_mul(want.data(), g.data(), rows, dim, gate_dim);
        gpu().sigmoid_mul(got.data(), g.data(), rows, dim, gate_dim);
        EXPECT_LT(normalized_error(got, want), kElementwiseBound) << "sigmoid_mul gate_dim " << gate_dim;
    }
    for (int64_t rows : {1, 5}) {
        const int64_t inter = 37;
        const std::vector<float> gu = random_floats(size_t(rows * 2 * inter), 85, -9.0f, 9.0f);
        std::vector<float> want(size_t(rows * inter)), got(want.size(), NAN);
        cpu_.clamped_swiglu(gu.data(), want.data(), rows, inter, 1.702f, 7.0f);
        gpu().clamped_swiglu(gu.data(), got.data(), rows, inter, 1.702f, 7.0f);
        EXPECT_LT(normalized_error(got, want), kElementwiseBound) << "clamped_swiglu rows " << rows;
    }
}

TEST_F(VulkanOps, CausalConv1d) {
    for (int64_t kernel : {1, 4})
        for (int64_t n_tokens : {1, 5})
            for (bool with_state : {false, true})
                for (bool silu : {false, true}) {
                    const int64_t channels = 37, hist = kernel - 1;
                    const TestWeight w(DType::BF16, channels, kernel, 91);
                    const std::vector<float> x = random_floats(size_t(n_tokens * channels), 92);
                    const std::vector<float> state = random_floats(size_t(std::max<int64_t>(hist, 1) * channels), 93);
                    std::vector<float> want(size_t(n_tokens * channels)), got(want.size(), NAN);
                    std::vector<float> want_state(size_t(std::max<int64_t>(hist, 1) * channels)), got_state(want_state.size());
                    cpu_.causal_conv1d(x.data(), w.view, with_state ? state.data() : nullptr, want_state.data(), want.data(),
                                       n_tokens, channels, silu);
                    gpu().causal_conv1d(x.data(), w.view, with_state ? state.data() : nullptr, got_state.data(), got.data(),
                                        n_tokens, channels, silu);
                    EXPECT_LT(normalized_error(got, want), kElementwiseBound)
                        << "kernel " << kernel << " n_tokens " << n_tokens << " state " << with_state;
                    if (hist > 0) {
                        EXPECT_EQ(got_state, want_state) << "state out, kernel " << kernel;
                    }
                }
}

TEST_F(VulkanOps, GatedDeltaRule) {
    for (int64_t n_tokens : {1, 4})
        for (bool with_state : {false, true}) {
            Backend::DeltaRuleShape s;
            s.n_tokens = n_tokens;
            s.n_heads = 4;
            s.n_k_heads = 2;
            s.k_dim = 16;
            s.v_dim = 20;
            s.scale = 0.25f;
            const size_t qk = size_t(n_tokens * s.n_k_heads * s.k_dim), vn = size_t(n_tokens * s.n_heads * s.v_dim);
            std::vector<float> q = random_floats(qk, 101), k = random_floats(qk, 102);
            cpu_.l2_norm(q.data(), n_tokens * s.n_k_heads, s.k_dim, 1e-6f);
            cpu_.l2_norm(k.data(), n_tokens * s.n_k_heads, s.k_dim, 1e-6f);
            const std::vector<float> v = random_floats(vn, 103);
            const std::vector<float> g = random_floats(size_t(n_tokens * s.n_heads), 104, -2.0f, 0.0f);
            const std::vector<float> beta = random_floats(size_t(n_tokens * s.n_heads), 105, 0.0f, 1.0f);
            const std::vector<float> state = random_floats(size_t(s.n_heads * s.k_dim * s.v_dim), 106);
            std::vector<float> want(vn), got(vn, NAN), want_state(state.size()), got_state(state.size());
            cpu_.gated_delta_rule(q.data(), k.data(), v.data(), g.data(), beta.data(), with_state ? state.data() : nullptr,
                                  want_state.data(), want.data(), s);
            gpu().gated_delta_rule(q.data(), k.data(), v.data(), g.data(), beta.data(), with_state ? state.data() : nullptr,
                                   got_state.data(), got.data(), s);
            EXPECT_LT(normalized_error(got, want), kRecurrentBound) << "n_tokens " << n_tokens << " state " << with_state;
            EXPECT_LT(normalized_error(got_state, want_state), kRecurrentBound) << "state out";
        }
}

TEST_F(VulkanOps, RoutedSwigluGroupMatchesPerExpertOps) {
    // Five tokens, four experts with uneven uses (one expert unused), Q4 and BF16 parts,
    // streamed (expert keys) so that the GPU expert cache serves the second call.
    const int64_t hidden = 96, inter = 40, n_tokens = 5;
    for (DType t : {DType::Q4, DType::BF16}) {
        std::vector<std::unique_ptr<TestWeight>> parts;
        std::vector<SwigluExpertUse> uses(4);
        const std::vector<std::vector<int64_t>> tokens = {{0, 2, 4}, {}, {1}, {0, 1, 2, 3, 4}};
        std::vector<std::vector<float>> weights;
        for (size_t e = 0; e < 4; ++e) {
            for (int p = 0; p < 3; ++p)
                parts.push_back(std::make_unique<TestWeight>(t, p < 2 ? inter : hidden, p < 2 ? hidden : inter,
                                                             uint32_t(200 + 3 * e + size_t(p))));
            for (int p = 0; p < 3; ++p) parts[parts.size() - 3 + size_t(p)]->view.expert_key = make_expert_key(1, int64_t(e), p);
            weights.push_back(random_floats(tokens[e].size(), uint32_t(300 + e), 0.1f, 1.0f));
            uses[e] = SwigluExpertUse{parts[3 * e]->view, parts[3 * e + 1]->view, parts[3 * e + 2]->view,
                                      tokens[e].data(), weights[e].data(), int64_t(tokens[e].size())};
        }
        const std::vector<float> h = random_floats(size_t(n_tokens * hidden), 107);
        const std::vector<float> start = random_floats(size_t(n_tokens * hidden), 108);
        std::vector<float> want = start;
        cpu_.routed_swiglu(h.data(), want.data(), n_tokens, hidden, uses.data(), uses.size());
        for (int call = 0; call < 2; ++call) {
            std::vector<float> got = start;
            gpu().routed_swiglu(h.data(), got.data(), n_tokens, hidden, uses.data(), uses.size());
            EXPECT_LT(normalized_error(got, want), dtype_is_quantized(t) ? kQuantBound : kFloatBound)
                << dtype_name(t) << " call " << call;
        }
    }
}

TEST_F(VulkanOps, BatchesChainResultsOnTheDevice) {
    // Ops in a batch read what earlier ops of the batch wrote: whole results, results
    // changed in place, a slice at an odd offset, and a range spanning two results
    // (which runs the batch so far first). All must equal the CPU running op by op.
    const int64_t H = 70, R = 40;
    const TestWeight w(DType::BF16, R, H, 401), w2(DType::F32, 2 * R, R, 402), norm(DType::F32, 1, 8, 403);
    const std::vector<float> x = random_floats(size_t(2 * H), 404);
    std::vector<float> inv_freq = {1.0f, 0.1f, 0.01f, 0.001f};
    RopeParams rp;
    rp.rotary_dim = 8;
    rp.inv_freq = inv_freq.data();
    const int32_t positions[2] = {3, 4};
    auto run = [&](Backend &b, bool batch) {
        std::vector<float> y(size_t(2 * R)), z(size_t(4 * R)), pair(size_t(2 * R));
        if (batch) b.begin_batch();
        b.matmul(w.view, x.data(), y.data(), 2);                         // y [2][40]
        b.rms_norm(y.data(), norm.view, 1.0f, 1e-6f, y.data(), 10, 8);    // in place, rows of 8
        b.rope(y.data(), 2, 5, 8, positions, rp);                       // in place
        b.matmul(w2.view, y.data() + 1, z.data(), 1);                     // a slice at an odd offset
        b.matmul(w2.view, y.data() + R, z.data() + 2 * R, 1);            // the second row
        b.silu_mul(z.data() + R - 5, z.data() + 2 * R, pair.data(), 10); // spans two results
        if (batch) b.end_batch();
        std::vector<float> out = y;
        out.insert(out.end(), z.begin(), z.end());
        out.insert(out.end(), pair.begin(), pair.begin() + 10);
        return out;
    };
    const std::vector<float> want = run(cpu_, false);
    const std::vector<float> got = run(gpu(), true);
    EXPECT_LT(normalized_error(got, want), kFloatBound);
    // The same with BackendBatch, and the default (CPU) batch is a no-op.
    std::vector<float> y(size_t(2 * R), NAN);
    {
        BackendBatch batch(gpu());
        gpu().matmul(w.view, x.data(), y.data(), 2);
    }
    std::vector<float> y_cpu(y.size());
    cpu_.matmul(w.view, x.data(), y_cpu.data(), 2);
    EXPECT_LT(normalized_error(y, y_cpu), kFloatBound);
}

TEST_F(VulkanOps, ThreadsShareOneBackend) {
    // Sessions of one model call its backend from their own threads: ops and batches
    // from two threads at once must each give their own results.
    const TestWeight w(DType::BF16, 48, 64, 501);
    auto work = [&](uint32_t seed, double &worst) {
        CpuBackend cpu(1, cpu_isa_best());
        for (int i = 0; i < 20; ++i) {
            const std::vector<float> x = random_floats(64 * 2, seed + uint32_t(i));
            std::vector<float> want(96), got(96, NAN), normed(96, NAN);
            cpu.matmul(w.view, x.data(), want.data(), 2);
            if (i % 2) {
                BackendBatch batch(gpu());
                gpu().matmul(w.view, x.data(), got.data(), 2);
                gpu().silu_mul(got.data(), got.data(), normed.data(), 96);
            } else {
                gpu().matmul(w.view, x.data(), got.data(), 2);
            }
            worst = std::max(worst, normalized_error(got, want));
        }
    };
    double worst_a = 0, worst_b = 0;
    std::thread a(work, 1000u, std::ref(worst_a)), b(work, 2000u, std::ref(worst_b));
    a.join();
    b.join();
    EXPECT_LT(worst_a, kFloatBound);
    EXPECT_LT(worst_b, kFloatBound);
}

TEST_F(VulkanOps, ErrorsNameTheProblem) {
    const TestWeight w(DType::F32, 4, 4, 1);
    std::vector<float> x(4), y(4);
    WeightView bad = w.view;
    bad.dtype = DType::I32;
    try {
        gpu().matmul(bad, x.data(), y.data(), 1);
        ADD_FAILURE() << "no error for an I32 weight";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), MST_ERR_UNSUPPORTED);
    }
    try {
        gpu().matmul(w.view, nullptr, y.data(), 1);
        ADD_FAILURE() << "no error for a null x";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), MST_ERR_INVALID_ARGUMENT);
    }
}

// Both backends check their arguments with the same functions (backend.h): one bad
// argument per op gives the same status and message on each.
TEST_F(VulkanOps, BadArgumentsFailAlikeOnBothBackends) {
    const TestWeight w(DType::F32, 4, 8, 1), down(DType::F32, 8, 4, 2), fp8(DType::F8_E4M3, 8, 8, 3);
    const TestWeight mx(DType::MXFP4, 2, 64, 4);
    std::vector<float> a(256, 0.5f), b(256, 0.5f);
    const int32_t positions[2] = {0, 1};
    const float inv_freq[4] = {1.0f, 0.5f, 0.25f, 0.125f};
    WeightView i32 = w.view, i8 = w.view, no_scales = mx.view;
    i32.dtype = DType::I32;
    i8.dtype = DType::I8;
    no_scales.scales = nullptr;
    const WeightView fp8_scales{DType::F32, b.data(), 2, 2};  // blocks 4x8 want 2x1
    RopeParams rope;
    rope.rotary_dim = 3;
    rope.inv_freq = inv_freq;
    AttentionParams att;
    att.n_tokens = 1;
    att.n_heads = 3;
    att.n_kv_heads = 2;
    att.head_dim = att.v_head_dim = 4;
    LatentAttentionParams lat;
    lat.n_tokens = 1;
    lat.latent_dim = 4;
    const Backend::DeltaRuleShape delta{1, 2, 2, 4, 4, 0.5f};
    const int64_t token = 5;
    const float weight = 1.0f;
    const SwigluExpertUse use{w.view, w.view, down.view, &token, &weight, 1};

    struct Case {
        const char *what;
        std::function<void(Backend &)> call;
    };
    const Case cases[] = {
        {"matmul I32", [&](Backend &k) { k.matmul(i32, a.data(), b.data(), 1); }},
        {"matmul MXFP4 without scales", [&](Backend &k) { k.matmul(no_scales, a.data(), b.data(), 1); }},
        {"matmul_xw n_tokens -1", [&](Backend &k) { k.matmul_xw(w.view, a.data(), b.data(), -1); }},
        {"matmul_transposed I8", [&](Backend &k) { k.matmul_transposed(i8, a.data(), b.data(), 1); }},
        {"matmul_block_fp8 scales",
         [&](Backend &k) { k.matmul_block_fp8(fp8.view, fp8_scales, 4, 8, a.data(), b.data(), 1); }},
        {"rms_norm weight size", [&](Backend &k) { k.rms_norm(a.data(), w.view, 0.0f, 1e-6f, b.data(), 1, 16); }},
        {"rms_norm_gated null gate",
         [&](Backend &k) { k.rms_norm_gated(a.data(), nullptr, w.view, 1e-6f, b.data(), 1, 32); }},
        {"l2_norm eps", [&](Backend &k) { k.l2_norm(a.data(), 1, 8, -1.0f); }},
        {"rope odd rotary_dim", [&](Backend &k) { k.rope(a.data(), 2, 1, 8, positions, rope); }},
        {"attention heads", [&](Backend &k) { k.attention(a.data(), a.data(), a.data(), b.data(), att); }},
        {"latent_attention n_heads 0", [&](Backend &k) { k.latent_attention(a.data(), a.data(), b.data(), lat); }},
        {"silu_mul n -1", [&](Backend &k) { k.silu_mul(a.data(), a.data(), b.data(), -1); }},
        {"sigmoid_mul gate_dim", [&](Backend &k) { k.sigmoid_mul(a.data(), b.data(), 1, 10, 3); }},
        {"clamped_swiglu null", [&](Backend &k) { k.clamped_swiglu(nullptr, b.data(), 1, 2, 1.0f, 7.0f); }},
        {"causal_conv1d weight shape",
         [&](Backend &k) { k.causal_conv1d(a.data(), w.view, nullptr, b.data(), b.data(), 1, 6, true); }},
        {"gated_delta_rule null state",
         [&](Backend &k) {
             k.gated_delta_rule(a.data(), a.data(), a.data(), a.data(), a.data(), nullptr, nullptr, b.data(), delta);
         }},
        {"routed_swiglu token", [&](Backend &k) { k.routed_swiglu(a.data(), b.data(), 2, 8, &use, 1); }},
    };
    auto error_of = [](const std::function<void(Backend &)> &call, Backend &k) -> std::pair<int, std::string> {
        try {
            call(k);
        } catch (const Error &e) {
            return {int(e.code()), e.what()};
        }
        return {int(MST_OK), "no error"};
    };
    for (const Case &c : cases) {
        const auto on_cpu = error_of(c.call, cpu_), on_gpu = error_of(c.call, gpu());
        EXPECT_NE(on_cpu.first, int(MST_OK)) << c.what << ": the CPU backend accepted it";
        EXPECT_EQ(on_cpu, on_gpu) << c.what;
    }
}

#ifdef MST_HAVE_VULKAN
TEST_F(VulkanOps, DeviceSelectionByEnvironmentAndName) {
    EXPECT_STREQ(gpu().name(), "vulkan");
    const std::string name = static_cast<VulkanBackend &>(gpu()).device_name();
    BackendOptions o;
    o.device = "0";
    EXPECT_NO_THROW(create_backend("vulkan", o));
    o.device = "no such device name";
    try {
        create_backend("vulkan", o);
        ADD_FAILURE() << "a device name that matches nothing was accepted";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), MST_ERR_BACKEND);
        EXPECT_NE(std::string(e.what()).find("no such device name"), std::string::npos) << e.what();
    }
    ::setenv("MST_VULKAN_DEVICE", "999", 1);
    try {
        create_backend("vulkan", BackendOptions{});
        ADD_FAILURE() << "MST_VULKAN_DEVICE=999 was accepted";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), MST_ERR_BACKEND);
        EXPECT_NE(std::string(e.what()).find("MST_VULKAN_DEVICE"), std::string::npos) << e.what();
    }
    ::unsetenv("MST_VULKAN_DEVICE");
    // "auto" never fails: a GPU or the CPU.
    const std::unique_ptr<Backend> any = create_backend("auto", BackendOptions{});
    EXPECT_TRUE(std::string(any->name()) == "vulkan" || std::string(any->name()) == "cpu");
}
#endif

}  // namespace
}  // namespace mst
