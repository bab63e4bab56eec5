// Backend::rms_norm_gated against a double-precision reference, for every ISA at 1 and 2
// threads. Error bound 4e-6: a double sum of squares, then three float32 products, an exp
// and a division per element.
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
using test::OpWeight;
using test::random_floats;

constexpr double kBound = 4e-6;

using CpuOpRmsNormGated = CpuOpTest;

TEST_P(CpuOpRmsNormGated, MatchesReference) {
    uint32_t seed = 30;
    for (DType dtype : {DType::F32, DType::BF16})
        for (int64_t rows : {1, 6, 3000})
            for (int64_t dim : {1, 16, 128})
                for (bool in_place : {false, true}) {
                    SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " rows " << rows << " dim " << dim
                                                      << " in_place " << in_place);
                    const OpWeight w(dtype, 1, dim, seed++, 0.5f, 1.5f);
                    std::vector<float> x = random_floats(size_t(rows * dim), seed++, -3.0f, 3.0f);
                    const std::vector<float> gate = random_floats(x.size(), seed++, -6.0f, 6.0f);
                    const float eps = 1e-6f;
                    std::vector<double> ref(x.size());
                    for (int64_t r = 0; r < rows; ++r) {
                        double sum = 0.0;
                        for (int64_t i = 0; i < dim; ++i)
                            sum += double(x[size_t(r * dim + i)]) * x[size_t(r * dim + i)];
                        const double inv = 1.0 / std::sqrt(sum / double(dim) + eps);
                        for (int64_t i = 0; i < dim; ++i) {
                            const double g = gate[size_t(r * dim + i)];
                            ref[size_t(r * dim + i)] =
                                x[size_t(r * dim + i)] * inv * w.value[size_t(i)] * g / (1.0 + std::exp(-g));
                        }
                    }
                    std::vector<float> separate(x.size(), NAN);
                    float *y = in_place ? x.data() : separate.data();
                    backend_->rms_norm_gated(x.data(), gate.data(), w.view(), eps, y, rows, dim);
                    EXPECT_LT(normalized_error(y, ref), kBound);
                }
}

TEST_P(CpuOpRmsNormGated, RejectsBadArguments) {
    const OpWeight w(DType::F32, 1, 8, 1);
    std::vector<float> x(16), gate(16), y(16);
    test::expect_error([&] { backend_->rms_norm_gated(x.data(), gate.data(), w.view(), 1e-6f, y.data(), 2, 16); },
                       MST_ERR_INVALID_ARGUMENT, {"rms_norm_gated", "expected 16"});
    test::expect_error([&] { backend_->rms_norm_gated(x.data(), nullptr, w.view(), 1e-6f, y.data(), 2, 8); },
                       MST_ERR_INVALID_ARGUMENT, {"rms_norm_gated", "null"});
}

MST_INSTANTIATE_CPU_OP(CpuOpRmsNormGated);

}  // namespace
}  // namespace mst
