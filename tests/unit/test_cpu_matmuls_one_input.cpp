// CpuBackend::matmuls_one_input (an attention's q, k and v products of one input): bitwise
// the same as matmul weight by weight, for every ISA at 1 and 2 threads, Q8 and Q4, row
// counts no multiple of a tile, one token (one product, one parallel region) and more
// tokens (weight by weight); other dtypes and mixed dtypes go weight by weight; bad
// arguments are errors naming what is wrong.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/op_profile.h"
#include "core/quant.h"
#include "cpu_op_fixture.h"

namespace mst {
namespace {

using test::CpuOpTest;
using test::random_floats;

struct QuantWeight {
    std::vector<uint8_t> bytes;
    WeightView view;
    QuantWeight(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
        const std::vector<float> v = random_floats(size_t(rows * cols), seed, -0.5f, 0.5f);
        const size_t row_bytes = size_t(dtype_row_bytes(dtype, cols));
        bytes.resize(row_bytes * size_t(rows));
        for (int64_t r = 0; r < rows; ++r) quantize_row(dtype, v.data() + r * cols, cols, bytes.data() + size_t(r) * row_bytes);
        view = WeightView{dtype, bytes.data(), rows, cols};
    }
};

using CpuMatmulsOneInput = CpuOpTest;

// Runs matmuls_one_input and matmul per weight on the same x; expects the same bits and
// returns the parallel regions matmuls_one_input ran.
uint64_t expect_same_as_one_by_one(CpuBackend &backend, const std::vector<DType> &types,
                                   const std::vector<int64_t> &rows, int64_t cols, int64_t n_tokens, uint32_t seed) {
    std::vector<QuantWeight> weights;
    std::vector<WeightView> views;
    for (size_t i = 0; i < types.size(); ++i) weights.emplace_back(types[i], rows[i], cols, seed + uint32_t(i));
    for (const QuantWeight &w : weights) views.push_back(w.view);
    const std::vector<float> x = random_floats(size_t(n_tokens * cols), seed + 50, -2.0f, 2.0f);
    std::vector<std::vector<float>> together, alone;
    std::vector<float *> outs;
    for (size_t i = 0; i < types.size(); ++i) {
        together.emplace_back(size_t(n_tokens * rows[i]), -1.0f);
        alone.emplace_back(size_t(n_tokens * rows[i]), -2.0f);
    }
    for (auto &y : together) outs.push_back(y.data());
    op_profile_reset();
    op_profile_enable(true);
    backend.matmuls_one_input(views, outs, x.data(), n_tokens);
    op_profile_enable(false);
    const uint64_t regions = op_profile_snapshot().regions.regions;
    op_profile_reset();
    for (size_t i = 0; i < types.size(); ++i) backend.matmul(views[i], x.data(), alone[i].data(), n_tokens);
    for (size_t i = 0; i < types.size(); ++i)
        EXPECT_EQ(std::memcmp(together[i].data(), alone[i].data(), together[i].size() * sizeof(float)), 0)
            << "weight " << i << " (" << dtype_name(types[i]) << "), " << n_tokens << " tokens";
    return regions;
}

TEST_P(CpuMatmulsOneInput, OneTokenIsOneProductBitwiseTheProductsOneByOne) {
    const int threads = std::get<1>(GetParam());
    for (DType t : {DType::Q8, DType::Q4}) {
        // q, k and v of a small attention: 264 + 44 + 44 rows (not whole 8-row tiles).
        const uint64_t regions = expect_same_as_one_by_one(*backend_, {t, t, t}, {264, 44, 44}, 512, 1, 1);
        // One region at 2 threads, where the products one by one take three.
        EXPECT_EQ(regions, threads > 1 ? 1u : 0u) << dtype_name(t);
        // Columns no multiple of a block, rows fewer than a tile.
        expect_same_as_one_by_one(*backend_, {t, t}, {5, 300}, 200, 1, 2);
    }
}

TEST_P(CpuMatmulsOneInput, OtherShapesGoOneByOne) {
    // Several tokens (up to the tiles of a prefill), mixed dtypes: the same bits either way.
    for (int64_t n : {2, 3, 40}) expect_same_as_one_by_one(*backend_, {DType::Q4, DType::Q4}, {64, 24}, 256, n, 3);
    expect_same_as_one_by_one(*backend_, {DType::Q8, DType::Q4, DType::Q8}, {64, 24, 16}, 256, 1, 4);
    expect_same_as_one_by_one(*backend_, {DType::Q8}, {64}, 256, 1, 5);
}

TEST_P(CpuMatmulsOneInput, BadArgumentsAreErrors) {
    const QuantWeight a(DType::Q8, 16, 64, 1), b(DType::Q8, 16, 32, 2);
    std::vector<float> x(64), y0(16), y1(16);
    float *two[] = {y0.data(), y1.data()};
    const WeightView one[] = {a.view};
    const WeightView other_cols[] = {a.view, b.view};
    try {
        backend_->matmuls_one_input(one, two, x.data(), 1);
        FAIL() << "no error";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), MST_ERR_INVALID_ARGUMENT);
        EXPECT_NE(std::string(e.what()).find("1 weights but 2 outputs"), std::string::npos) << e.what();
    }
    try {
        backend_->matmuls_one_input(other_cols, two, x.data(), 1);
        FAIL() << "no error";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), MST_ERR_INVALID_ARGUMENT);
        EXPECT_NE(std::string(e.what()).find("weight 1 has 32 columns"), std::string::npos) << e.what();
    }
}

MST_INSTANTIATE_CPU_OP(CpuMatmulsOneInput);

}  // namespace
}  // namespace mst
