// Backend::sigmoid_mul against a double-precision reference, for every ISA at 1 and 2
// threads: elementwise gates, one gate per row and one per group of columns. Error bound
// 2e-6: one float32 exp, a division and a product per element.
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

using CpuOpSigmoidMul = CpuOpTest;

TEST_P(CpuOpSigmoidMul, MatchesReference) {
    uint32_t seed = 40;
    for (int64_t rows : {1, 3, 2000})
        for (int64_t dim : {1, 12, 256})
            for (int64_t gate_dim : {int64_t(1), dim / 4, dim}) {
                if (gate_dim < 1 || dim % gate_dim != 0) continue;
                SCOPED_TRACE(::testing::Message() << "rows " << rows << " dim " << dim << " gate_dim " << gate_dim);
                std::vector<float> x = random_floats(size_t(rows * dim), seed++, -2.0f, 2.0f);
                const std::vector<float> gate = random_floats(size_t(rows * gate_dim), seed++, -8.0f, 8.0f);
                std::vector<double> ref(x.size());
                for (int64_t r = 0; r < rows; ++r)
                    for (int64_t i = 0; i < dim; ++i) {
                        const double g = gate[size_t(r * gate_dim + i / (dim / gate_dim))];
                        ref[size_t(r * dim + i)] = x[size_t(r * dim + i)] / (1.0 + std::exp(-g));
                    }
                backend_->sigmoid_mul(x.data(), gate.data(), rows, dim, gate_dim);
                EXPECT_LT(normalized_error(x.data(), ref), kBound);
            }
}

TEST_P(CpuOpSigmoidMul, ExtremeGatesStayFinite) {
    std::vector<float> x = {3.0f, 3.0f, 3.0f, 3.0f};
    const std::vector<float> gate = {-1000.0f, -100.0f, 0.0f, 1000.0f};
    backend_->sigmoid_mul(x.data(), gate.data(), 1, 4, 4);
    EXPECT_EQ(x[0], 0.0f);
    EXPECT_NEAR(x[1], 0.0f, 1e-40f);
    EXPECT_EQ(x[2], 1.5f);
    EXPECT_EQ(x[3], 3.0f);
}

TEST_P(CpuOpSigmoidMul, RejectsGateDimNotDividingDim) {
    std::vector<float> x(10), gate(3);
    test::expect_error([&] { backend_->sigmoid_mul(x.data(), gate.data(), 1, 10, 3); }, MST_ERR_INVALID_ARGUMENT,
                       {"sigmoid_mul", "gate_dim 3"});
}

MST_INSTANTIATE_CPU_OP(CpuOpSigmoidMul);

}  // namespace
}  // namespace mst
