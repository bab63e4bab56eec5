// CpuBackend::routed_swiglu (the fused decode path, op_routed_swiglu.cpp) against
// Backend::routed_swiglu (matmul, silu_mul and matmul per expert), for every ISA at 1 and
// 2 threads: bitwise equal, since the fused path keeps every operation and its order.
// Q4, Q8, BF16 and F32 experts (mixed within one expert too), decode groups (one token per
// expert, as the decoder calls it), shared tokens, and prefill groups (the grouped GEMM:
// many tokens per expert, odd counts, more token rows than one fused pass takes).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/op_profile.h"
#include "core/quant.h"
#include "cpu_op_fixture.h"

namespace mst {
namespace {

using test::CpuOpTest;
using test::random_floats;

// A [rows][cols] matrix in `dtype`, from random values.
struct StoredWeight {
    std::vector<uint8_t> bytes;
    WeightView view;
    StoredWeight(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
        const std::vector<float> v = random_floats(size_t(rows * cols), seed, -0.5f, 0.5f);
        const size_t row_bytes = size_t(dtype_row_bytes(dtype, cols));
        bytes.resize(row_bytes * size_t(rows));
        for (int64_t r = 0; r < rows; ++r) {
            uint8_t *dst = bytes.data() + size_t(r) * row_bytes;
            const float *src = v.data() + r * cols;
            if (dtype_is_quantized(dtype)) {
                quantize_row(dtype, src, cols, dst);
            } else if (dtype == DType::BF16) {
                for (int64_t c = 0; c < cols; ++c) {
                    const uint16_t b = f32_to_bf16(src[c]);
                    std::memcpy(dst + 2 * c, &b, 2);
                }
            } else {
                std::memcpy(dst, src, row_bytes);
            }
        }
        view = WeightView{dtype, bytes.data(), rows, cols};
    }
};

struct Expert {
    StoredWeight gate, up, down;
    std::vector<int64_t> tokens;
    std::vector<float> weights;
};

using CpuOpRoutedSwiglu = CpuOpTest;

// Runs both paths on `experts` (dtypes per part) and expects the same bits.
void expect_fused_equals_unfused(CpuBackend &backend, const std::vector<std::array<DType, 3>> &types,
                                 const std::vector<std::vector<int64_t>> &tokens, int64_t n_tokens, int64_t hidden,
                                 int64_t inter, uint32_t seed) {
    std::vector<Expert> experts;
    for (size_t e = 0; e < types.size(); ++e) {
        Expert x{StoredWeight(types[e][0], inter, hidden, seed + 3 * uint32_t(e)),
                 StoredWeight(types[e][1], inter, hidden, seed + 3 * uint32_t(e) + 1),
                 StoredWeight(types[e][2], hidden, inter, seed + 3 * uint32_t(e) + 2), tokens[e], {}};
        x.weights = random_floats(x.tokens.size(), seed + 100 + uint32_t(e), 0.05f, 0.5f);
        experts.push_back(std::move(x));
    }
    std::vector<SwigluExpertUse> uses;
    for (const Expert &x : experts)
        uses.push_back(SwigluExpertUse{x.gate.view, x.up.view, x.down.view, x.tokens.data(), x.weights.data(),
                                       int64_t(x.tokens.size())});
    const std::vector<float> h = random_floats(size_t(n_tokens * hidden), seed + 200, -2.0f, 2.0f);
    // The same nonzero start in both, as a layer's output is accumulated into.
    std::vector<float> fused = random_floats(size_t(n_tokens * hidden), seed + 300);
    std::vector<float> unfused = fused;
    backend.routed_swiglu(h.data(), fused.data(), n_tokens, hidden, uses.data(), uses.size());
    backend.Backend::routed_swiglu(h.data(), unfused.data(), n_tokens, hidden, uses.data(), uses.size());
    ASSERT_EQ(std::memcmp(fused.data(), unfused.data(), fused.size() * sizeof(float)), 0);
    bool changed = false;
    const std::vector<float> start = random_floats(size_t(n_tokens * hidden), seed + 300);
    for (size_t i = 0; i < start.size(); ++i) changed = changed || fused[i] != start[i];
    EXPECT_TRUE(changed) << "the experts added nothing";
}

TEST_P(CpuOpRoutedSwiglu, DecodeGroupsAreBitwiseTheUnfusedPath) {
    const DType q4 = DType::Q4, q8 = DType::Q8, bf = DType::BF16, f32 = DType::F32;
    // Eight experts, one token row each (the decoder gives each expert a copy of h).
    std::vector<std::array<DType, 3>> types(8, {q4, q4, q4});
    std::vector<std::vector<int64_t>> tokens;
    for (int64_t e = 0; e < 8; ++e) tokens.push_back({e});
    expect_fused_equals_unfused(*backend_, types, tokens, 8, 256, 96, 1);
    types.assign(8, {q8, q8, q8});
    expect_fused_equals_unfused(*backend_, types, tokens, 8, 256, 96, 2);
    types.assign(8, {bf, bf, bf});
    expect_fused_equals_unfused(*backend_, types, tokens, 8, 256, 96, 3);
    // Mixed parts, an intermediate size that is no multiple of 32 or of a unit.
    types = {{q4, bf, q8}, {f32, q4, bf}, {bf, q8, q4}};
    expect_fused_equals_unfused(*backend_, types, {{0}, {1}, {2}}, 3, 128, 200, 4);
    // Q4 and Q8 gate and up in one expert and across experts: under MST_CPU_ACT_BITS=q4 the
    // two take different activation widths (8 and 16 bits), so h is quantized in both forms.
    types = {{q4, q8, q4}, {q8, q4, q8}, {q8, q8, q4}};
    expect_fused_equals_unfused(*backend_, types, {{0}, {1}, {2}}, 3, 128, 200, 5);
}

TEST_P(CpuOpRoutedSwiglu, SharedTokensAndLargeGroups) {
    const DType q4 = DType::Q4, bf = DType::BF16;
    // Tokens served by several experts, up to 4 per expert (fused), in any order.
    expect_fused_equals_unfused(*backend_, {{q4, q4, q4}, {q4, q4, q4}, {bf, bf, bf}},
                                {{2, 0, 1, 4}, {4, 2}, {3}}, 5, 96, 64, 5);
    // An expert with 9 tokens.
    expect_fused_equals_unfused(*backend_, {{q4, q4, q4}, {q4, q4, q4}}, {{0, 1, 2, 3, 4, 5, 6, 7, 8}, {1}}, 9, 64,
                                64, 6);
    // An expert with no tokens in the group.
    expect_fused_equals_unfused(*backend_, {{q4, q4, q4}, {q4, q4, q4}}, {{}, {0}}, 1, 64, 64, 7);
}

// The tokens 0, step, 2 step, ... below n_tokens.
std::vector<int64_t> every(int64_t step, int64_t first, int64_t n_tokens) {
    std::vector<int64_t> t;
    for (int64_t i = first; i < n_tokens; i += step) t.push_back(i);
    return t;
}

TEST_P(CpuOpRoutedSwiglu, PrefillGroupsAreFusedAndBitwiseTheUnfusedPath) {
    const DType q4 = DType::Q4, q8 = DType::Q8, bf = DType::BF16;
    // A 45-token prompt over 5 experts: 45, 23, 15, 9 and 7 tokens each (no multiple of
    // any token tile), hidden and intermediate sizes no multiple of a unit.
    const int64_t n = 45;
    const std::vector<std::vector<int64_t>> tokens{every(1, 0, n), every(2, 0, n), every(3, 1, n), every(5, 2, n),
                                                   every(7, 3, n)};
    op_profile_reset();
    op_profile_enable(true);
    expect_fused_equals_unfused(*backend_, std::vector<std::array<DType, 3>>(5, {q4, q4, q4}), tokens, n, 160, 200,
                                8);
    op_profile_enable(false);
    const OpProfileSnapshot p = op_profile_snapshot();
    op_profile_reset();
    // One fused call (the unfused reference runs the matmuls it is compared with).
    ASSERT_TRUE(p.by_kind.count("routed_swiglu"));
    EXPECT_EQ(p.by_kind.at("routed_swiglu").calls, 1u);
    expect_fused_equals_unfused(*backend_, {{q8, q8, q8}, {bf, bf, bf}, {q4, bf, q8}}, {tokens[0], tokens[1], tokens[3]},
                                n, 96, 64, 9);
    // Token rows shared by experts whose gate and up take different activation widths.
    expect_fused_equals_unfused(*backend_, {{q4, q8, q4}, {q8, q8, q8}, {q4, q4, q4}}, {tokens[0], tokens[2], tokens[4]},
                                n, 96, 64, 10);
}

TEST_P(CpuOpRoutedSwiglu, LongPromptsGoInSeveralPassesInExpertOrder) {
    const DType q4 = DType::Q4;
    // 3001 token rows: more than one pass takes, so the experts are split into passes
    // whose additions must still come in expert order.
    const int64_t n = 1500;
    op_profile_reset();
    op_profile_enable(true);
    expect_fused_equals_unfused(*backend_, std::vector<std::array<DType, 3>>(3, {q4, q4, q4}),
                                {every(1, 0, n), every(1, 0, n), {7}}, n, 64, 32, 10);
    op_profile_enable(false);
    const OpProfileSnapshot p = op_profile_snapshot();
    op_profile_reset();
    ASSERT_TRUE(p.by_kind.count("routed_swiglu"));
    EXPECT_EQ(p.by_kind.at("routed_swiglu").calls, 2u);
}

// A decode layer at Qwen3-30B-A3B's expert sizes (8 experts, 2048 x 768 q4) is one
// parallel region: the down units wait for their expert's gate and up units instead of a
// second region (bench/README.md "Where the decode threads' time goes"); bitwise the
// unfused path, with both threads taking units of both phases.
TEST_P(CpuOpRoutedSwiglu, DecodeLayerIsOneRegion) {
    const DType q4 = DType::Q4;
    std::vector<std::vector<int64_t>> tokens;
    for (int64_t e = 0; e < 8; ++e) tokens.push_back({0});  // one token, as the decoder gives it
    for (uint32_t seed : {11u, 12u, 13u}) {
        op_profile_reset();
        op_profile_enable(true);
        expect_fused_equals_unfused(*backend_, std::vector<std::array<DType, 3>>(8, {q4, q4, q4}), tokens, 1, 2048,
                                    768, seed);
        op_profile_enable(false);
        const OpProfileSnapshot p = op_profile_snapshot();
        op_profile_reset();
        const auto it = p.regions_by_kind.find("routed_swiglu");
        if (std::get<1>(GetParam()) < 2) {
            EXPECT_EQ(it, p.regions_by_kind.end()) << "one thread runs no region";
            continue;
        }
        ASSERT_NE(it, p.regions_by_kind.end());
        EXPECT_EQ(it->second.regions, 1u);
    }
}

MST_INSTANTIATE_CPU_OP(CpuOpRoutedSwiglu);

}  // namespace
}  // namespace mst
