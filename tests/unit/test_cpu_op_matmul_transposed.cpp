// Backend::matmul_transposed (y = W^T x) against a double-precision reference, for every
// weight dtype, sizes that leave partial column ranges, and several token counts.
// Bound: 1e-5 of max |ref| (float32 accumulation over at most 300 products of values in
// [-1, 1]); a wrong index or a missed row is >= 1e-3.
#include <gtest/gtest.h>

#include "core/dtype.h"
#include "core/error.h"
#include "cpu_op_fixture.h"
#include "expect_error.h"

namespace mst {
namespace {

using test::CpuOpTest;
using test::random_floats;

constexpr double kBound = 1e-5;

struct Weight {
    DType dtype;
    int64_t rows, cols;
    std::vector<uint16_t> half;
    std::vector<float> full;
    std::vector<double> value;
    Weight(DType t, int64_t r, int64_t c, uint32_t seed) : dtype(t), rows(r), cols(c) {
        full = random_floats(size_t(r * c), seed);
        value.assign(full.begin(), full.end());
        if (t == DType::F32) return;
        half.resize(full.size());
        for (size_t i = 0; i < full.size(); ++i) {
            half[i] = t == DType::BF16 ? f32_to_bf16(full[i]) : f32_to_f16(full[i]);
            value[i] = t == DType::BF16 ? bf16_to_f32(half[i]) : f16_to_f32(half[i]);
        }
    }
    WeightView view() const {
        return {dtype, dtype == DType::F32 ? static_cast<const void *>(full.data()) : half.data(), rows, cols};
    }
};

using CpuOpMatmulTransposed = CpuOpTest;

TEST_P(CpuOpMatmulTransposed, MatchesReference) {
    for (DType dtype : {DType::F32, DType::F16, DType::BF16})
        for (auto [rows, cols] : {std::pair<int64_t, int64_t>{37, 300}, {128, 512}, {1, 1}, {300, 65}})
            for (int64_t n_tokens : {1, 3, 9}) {
                SCOPED_TRACE(::testing::Message()
                             << dtype_name(dtype) << " " << rows << "x" << cols << " tokens " << n_tokens);
                const Weight w(dtype, rows, cols, uint32_t(rows * 7 + cols));
                const std::vector<float> x = random_floats(size_t(n_tokens * rows), uint32_t(cols));
                std::vector<double> ref(size_t(n_tokens * cols), 0.0);
                for (int64_t t = 0; t < n_tokens; ++t)
                    for (int64_t r = 0; r < rows; ++r)
                        for (int64_t c = 0; c < cols; ++c)
                            ref[size_t(t * cols + c)] +=
                                w.value[size_t(r * cols + c)] * double(x[size_t(t * rows + r)]);
                const std::vector<float> y = test::run_guarded(
                    ref.size(), [&](float *out) { backend_->matmul_transposed(w.view(), x.data(), out, n_tokens); });
                EXPECT_LT(test::normalized_error(y, ref), kBound);
            }
}

TEST_P(CpuOpMatmulTransposed, ZeroRowsGiveZeros) {
    const WeightView w{DType::F32, nullptr, 0, 5};
    std::vector<float> y(10, 3.0f);
    backend_->matmul_transposed(w, nullptr, y.data(), 2);
    for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST_P(CpuOpMatmulTransposed, RejectsBadArguments) {
    std::vector<float> x(4), y(4);
    const uint8_t bytes[4] = {};
    test::expect_error(
        [&] {
            backend_->matmul_transposed({DType::F8_E4M3, bytes, 2, 2}, x.data(), y.data(), 1);
        },
        MST_ERR_UNSUPPORTED, {"matmul_transposed", "F8_E4M3"});
    test::expect_error(
        [&] {
            backend_->matmul_transposed({DType::F32, x.data(), -1, 2}, x.data(), y.data(), 1);
        },
        MST_ERR_INVALID_ARGUMENT, {"negative size"});
    test::expect_error(
        [&] {
            backend_->matmul_transposed({DType::F32, x.data(), 2, 2}, nullptr, y.data(), 1);
        },
        MST_ERR_INVALID_ARGUMENT, {"null pointer"});
}

MST_INSTANTIATE_CPU_OP(CpuOpMatmulTransposed);

}  // namespace
}  // namespace mst
