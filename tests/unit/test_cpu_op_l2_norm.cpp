// Backend::l2_norm against a double-precision reference, for every ISA at 1 and 2 threads.
// Error bound 2e-6: a double sum of squares, then one float32 product per element.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "cpu_op_fixture.h"
#include "expect_error.h"

namespace mst {
namespace {

using test::CpuOpTest;
using test::normalized_error;
using test::random_floats;

constexpr double kBound = 2e-6;

using CpuOpL2Norm = CpuOpTest;

TEST_P(CpuOpL2Norm, MatchesReference) {
    uint32_t seed = 20;
    for (int64_t rows : {1, 5, 4000})
        for (int64_t dim : {1, 16, 128, 131})
            for (float eps : {0.0f, 1e-6f}) {
                SCOPED_TRACE(::testing::Message() << "rows " << rows << " dim " << dim << " eps " << eps);
                std::vector<float> x = random_floats(size_t(rows * dim), seed++, -3.0f, 3.0f);
                std::vector<double> ref(x.size());
                for (int64_t r = 0; r < rows; ++r) {
                    double sum = 0.0;
                    for (int64_t i = 0; i < dim; ++i) sum += double(x[size_t(r * dim + i)]) * x[size_t(r * dim + i)];
                    for (int64_t i = 0; i < dim; ++i)
                        ref[size_t(r * dim + i)] = x[size_t(r * dim + i)] / std::sqrt(sum + eps);
                }
                backend_->l2_norm(x.data(), rows, dim, eps);
                EXPECT_LT(normalized_error(x.data(), ref), kBound);
            }
}

TEST_P(CpuOpL2Norm, ZeroRowStaysZeroWithEps) {
    std::vector<float> x(8, 0.0f);
    backend_->l2_norm(x.data(), 1, 8, 1e-6f);
    EXPECT_EQ(x, std::vector<float>(8, 0.0f));
}

TEST_P(CpuOpL2Norm, RejectsBadArguments) {
    std::vector<float> x(8);
    test::expect_error([&] { backend_->l2_norm(x.data(), 1, 0, 1e-6f); }, MST_ERR_INVALID_ARGUMENT,
                       {"l2_norm", "dim 0"});
    test::expect_error([&] { backend_->l2_norm(x.data(), 1, 8, -1.0f); }, MST_ERR_INVALID_ARGUMENT, {"l2_norm", "eps"});
    test::expect_error([&] { backend_->l2_norm(nullptr, 1, 8, 1e-6f); }, MST_ERR_INVALID_ARGUMENT, {"l2_norm", "null"});
}

MST_INSTANTIATE_CPU_OP(CpuOpL2Norm);

}  // namespace
}  // namespace mst
