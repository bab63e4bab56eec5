// Shared pieces of the CPU op tests (tests/unit/test_cpu_op_*.cpp): a fixture that runs
// each test for every ISA this machine supports (others skipped) at 1 and 2 threads,
// random inputs and weights, and the error measure (against double-precision references)
// the op tests bound.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "backends/cpu/cpu_backend.h"

namespace mst {

// Names the ISA in GoogleTest's messages.
inline void PrintTo(CpuIsa isa, std::ostream *os) { *os << cpu_isa_name(isa); }

namespace test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float &f : v) f = dist(rng);
    return v;
}

// max |y - ref| / max |ref| over the ref.size() elements of y; a NaN in y makes it infinite.
inline double normalized_error(const float *y, const std::vector<double> &ref) {
    double max_err = 0.0, max_ref = 0.0;
    for (size_t i = 0; i < ref.size(); ++i) {
        if (std::isnan(double(y[i]))) return INFINITY;
        max_err = std::max(max_err, std::abs(double(y[i]) - ref[i]));
        max_ref = std::max(max_ref, std::abs(ref[i]));
    }
    return max_ref > 0.0 ? max_err / max_ref : max_err;
}
inline double normalized_error(const std::vector<float> &y, const std::vector<double> &ref) {
    return normalized_error(y.data(), ref);
}
// The same against a float result (another backend's, as the Vulkan tests compare with the
// CPU's): sizes must match, and a NaN on one side only makes it infinite.
inline double normalized_error(const std::vector<float> &got, const std::vector<float> &want) {
    EXPECT_EQ(got.size(), want.size());
    double max_err = 0.0, max_ref = 0.0;
    for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
        if (std::isnan(got[i]) != std::isnan(want[i])) return INFINITY;
        if (std::isnan(want[i])) continue;
        max_err = std::max(max_err, std::abs(double(got[i]) - double(want[i])));
        max_ref = std::max(max_ref, std::abs(double(want[i])));
    }
    return max_ref > 0.0 ? max_err / max_ref : max_err;
}

// Calls op(y) on an output of n_out floats followed by sentinels, fails the test where op
// wrote past the output, and returns the n_out floats it wrote.
template <typename Op>
std::vector<float> run_guarded(size_t n_out, Op &&op) {
    constexpr float kSentinel = 12345.0f;
    std::vector<float> y(n_out + 64, kSentinel);
    op(y.data());
    for (size_t i = n_out; i < y.size(); ++i)
        if (y[i] != kSentinel) {
            ADD_FAILURE() << "write past the output at " << i;
            break;
        }
    y.resize(n_out);
    return y;
}

// A weight matrix stored as float32, float16 or bfloat16, with the values it holds as
// doubles (so that rounding to the dtype is no part of a measured error).
struct OpWeight {
    DType dtype;
    int64_t rows, cols;
    std::vector<float> f32;
    std::vector<uint16_t> half;  // the float16 or bfloat16 bits
    std::vector<double> value;

    OpWeight(DType t, int64_t r, int64_t c, uint32_t seed, float lo = -1.0f, float hi = 1.0f)
        : dtype(t), rows(r), cols(c) {
        f32 = random_floats(size_t(r * c), seed, lo, hi);
        value.assign(f32.begin(), f32.end());
        if (t != DType::F32) {
            half.resize(f32.size());
            for (size_t i = 0; i < f32.size(); ++i) {
                half[i] = t == DType::BF16 ? f32_to_bf16(f32[i]) : f32_to_f16(f32[i]);
                value[i] = t == DType::BF16 ? bf16_to_f32(half[i]) : f16_to_f32(half[i]);
            }
        }
    }
    WeightView view() const {
        return {dtype, dtype == DType::F32 ? static_cast<const void *>(f32.data()) : half.data(), rows, cols};
    }
};

using CpuOpParam = std::tuple<CpuIsa, int>;

class CpuOpTest : public ::testing::TestWithParam<CpuOpParam> {
protected:
    void SetUp() override {
        const auto [isa, threads] = GetParam();
        if (!cpu_isa_supported(isa)) GTEST_SKIP() << "this CPU has no " << cpu_isa_name(isa);
        backend_ = std::make_unique<CpuBackend>(threads, isa);
        ASSERT_EQ(backend_->isa(), isa);
    }
    std::unique_ptr<CpuBackend> backend_;
};

inline std::string cpu_op_param_name(const ::testing::TestParamInfo<CpuOpParam> &info) {
    return std::string(cpu_isa_name(std::get<0>(info.param))) + "_t" + std::to_string(std::get<1>(info.param));
}

}  // namespace test
}  // namespace mst

#define MST_INSTANTIATE_CPU_OP(suite)                                                                      \
    INSTANTIATE_TEST_SUITE_P(                                                                              \
        Isa, suite,                                                                                        \
        ::testing::Combine(::testing::Values(mst::CpuIsa::Scalar, mst::CpuIsa::Avx2, mst::CpuIsa::Avx512), \
                           ::testing::Values(1, 2)),                                                       \
        mst::test::cpu_op_param_name)
