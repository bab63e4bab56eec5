// Backend::clamped_swiglu (gpt-oss) on the CPU backend against a double-precision
// reference of the formula, over inputs well beyond the clamp limit on both sides.
// Bound: |y - ref| <= 2e-6 * max(1, |ref|) (one float32 exp, a division and products).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "core/error.h"
#include "expect_error.h"

namespace mst {
namespace {

constexpr double kBound = 2e-6;

double reference(double gate, double up, double alpha, double limit) {
    const double g = std::min(gate, limit);
    const double u = std::max(-limit, std::min(up, limit));
    return (u + 1.0) * g / (1.0 + std::exp(-alpha * g));
}

class CpuOpClampedSwiglu : public ::testing::TestWithParam<int> {
protected:
    CpuBackend backend_{GetParam(), CpuIsa::Scalar};
};

TEST_P(CpuOpClampedSwiglu, MatchesReference) {
    const float alpha = 1.702f, limit = 7.0f;
    for (int64_t rows : {1, 3, 200}) {
        for (int64_t inter : {1, 5, 64}) {
            std::mt19937 rng(uint32_t(rows * 100 + inter));
            std::uniform_real_distribution<float> dist(-12.0f, 12.0f);
            std::vector<float> gate_up(size_t(rows * 2 * inter));
            for (float &v : gate_up) v = dist(rng);
            std::vector<float> out(size_t(rows * inter) + 8, 777.0f);
            backend_.clamped_swiglu(gate_up.data(), out.data(), rows, inter, alpha, limit);
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t i = 0; i < inter; ++i) {
                    const double want = reference(gate_up[size_t(r * 2 * inter + 2 * i)],
                                                  gate_up[size_t(r * 2 * inter + 2 * i + 1)], alpha, limit);
                    const double got = out[size_t(r * inter + i)];
                    ASSERT_LE(std::abs(got - want), kBound * std::max(1.0, std::abs(want)))
                        << "rows " << rows << " inter " << inter << " at " << r << "," << i;
                }
            for (size_t i = size_t(rows * inter); i < out.size(); ++i)
                ASSERT_EQ(out[i], 777.0f) << "write past the end";
        }
    }
}

TEST_P(CpuOpClampedSwiglu, ClampsGateAboveOnlyAndUpBothWays) {
    // gate 100 acts as 7; gate -100 is not clamped (its sigmoid is 0); up +-100 act as +-7.
    const std::vector<float> gate_up = {100.0f, 100.0f, 100.0f, -100.0f, -100.0f, 0.5f};
    std::vector<float> out(3);
    backend_.clamped_swiglu(gate_up.data(), out.data(), 1, 3, 1.702f, 7.0f);
    EXPECT_NEAR(out[0], reference(7.0, 7.0, 1.702, 7.0), 1e-5);
    EXPECT_NEAR(out[1], reference(7.0, -7.0, 1.702, 7.0), 1e-5);
    EXPECT_EQ(out[2], -0.0f * 1.5f);  // -100 * sigmoid(-170.2) underflows to (-)0
    EXPECT_NEAR(out[0], 8.0 * 7.0 / (1.0 + std::exp(-1.702 * 7.0)), 1e-5);
}

TEST_P(CpuOpClampedSwiglu, RejectsBadArguments) {
    std::vector<float> v(4);
    test::expect_error([&] { backend_.clamped_swiglu(v.data(), v.data(), -1, 2, 1.0f, 7.0f); },
                       MST_ERR_INVALID_ARGUMENT, {"negative"});
    test::expect_error([&] { backend_.clamped_swiglu(nullptr, v.data(), 1, 2, 1.0f, 7.0f); },
                       MST_ERR_INVALID_ARGUMENT, {"null"});
}

INSTANTIATE_TEST_SUITE_P(Threads, CpuOpClampedSwiglu, ::testing::Values(1, 2));

}  // namespace
}  // namespace mst
