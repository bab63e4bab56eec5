// Backend::causal_conv1d against a double-precision reference written here, for every ISA
// at 1 and 2 threads.
//
// Error bound (max |y - ref| / max |ref|): 2e-6, a sum of at most 4 float32 products and,
// with SiLU, one float32 exp and division per element.
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

constexpr double kBound = 2e-6;

// y and the new state for x [n][channels], weights [channels][kernel] and a state
// [kernel - 1][channels] (empty = zeros).
void reference(const OpWeight &w, const std::vector<float> &x, const std::vector<float> &state, int64_t n, bool silu,
               std::vector<double> &y, std::vector<double> &next_state) {
    const int64_t C = w.rows, K = w.cols, hist = K - 1;
    // The whole input sequence: the history, then x.
    std::vector<double> seq(size_t((hist + n) * C), 0.0);
    for (size_t i = 0; i < state.size(); ++i) seq[i] = state[i];
    for (size_t i = 0; i < x.size(); ++i) seq[size_t(hist * C) + i] = x[i];
    y.assign(size_t(n * C), 0.0);
    for (int64_t t = 0; t < n; ++t)
        for (int64_t c = 0; c < C; ++c) {
            double sum = 0.0;
            for (int64_t j = 0; j < K; ++j) sum += w.value[size_t(c * K + j)] * seq[size_t((t + j) * C + c)];
            y[size_t(t * C + c)] = silu ? sum / (1.0 + std::exp(-sum)) : sum;
        }
    next_state.assign(seq.end() - hist * C, seq.end());
}

using CpuOpCausalConv1d = CpuOpTest;

TEST_P(CpuOpCausalConv1d, MatchesReference) {
    uint32_t seed = 1;
    for (DType dtype : {DType::F32, DType::BF16})
        for (int64_t channels : {1, 7, 300})
            for (int64_t kernel : {1, 2, 4})
                for (int64_t n : {1, 2, 9})
                    for (bool with_state : {false, true})
                        for (bool silu : {false, true}) {
                            SCOPED_TRACE(::testing::Message()
                                         << dtype_name(dtype) << " C " << channels << " K " << kernel << " n " << n
                                         << " state " << with_state << " silu " << silu);
                            const OpWeight w(dtype, channels, kernel, seed++);
                            const std::vector<float> x = random_floats(size_t(n * channels), seed++, -2.0f, 2.0f);
                            std::vector<float> state;
                            if (with_state) state = random_floats(size_t((kernel - 1) * channels), seed++, -2.0f, 2.0f);
                            std::vector<float> y(x.size(), NAN), next(size_t((kernel - 1) * channels), NAN);
                            backend_->causal_conv1d(x.data(), w.view(), with_state ? state.data() : nullptr,
                                                    next.data(), y.data(), n, channels, silu);
                            std::vector<double> ref_y, ref_next;
                            reference(w, x, state, n, silu, ref_y, ref_next);
                            EXPECT_LT(normalized_error(y.data(), ref_y), kBound);
                            for (size_t i = 0; i < next.size(); ++i) EXPECT_EQ(double(next[i]), ref_next[i]);
                        }
}

TEST_P(CpuOpCausalConv1d, SplitCallsEqualOneCall) {
    // Calls of 1, 2 (shorter than the history) and more tokens, the state carried in place,
    // give the outputs of one call bit for bit.
    const int64_t C = 37, K = 4, n = 12;
    const OpWeight w(DType::BF16, C, K, 5);
    const std::vector<float> x = random_floats(size_t(n * C), 6);
    const std::vector<float> start = random_floats(size_t((K - 1) * C), 7);
    std::vector<float> whole(x.size()), whole_state(start.size());
    backend_->causal_conv1d(x.data(), w.view(), start.data(), whole_state.data(), whole.data(), n, C, true);

    std::vector<float> split(x.size()), state = start;
    int64_t t0 = 0;
    for (int64_t len : {1, 2, 1, 5, 3}) {
        backend_->causal_conv1d(x.data() + t0 * C, w.view(), state.data(), state.data(), split.data() + t0 * C, len, C,
                                true);
        t0 += len;
    }
    ASSERT_EQ(t0, n);
    EXPECT_EQ(split, whole);
    EXPECT_EQ(state, whole_state);
}

TEST_P(CpuOpCausalConv1d, ZeroTokensKeepTheState) {
    const OpWeight w(DType::F32, 3, 4, 8);
    const std::vector<float> start = random_floats(9, 9);
    std::vector<float> next(9, NAN);
    backend_->causal_conv1d(nullptr, w.view(), start.data(), next.data(), nullptr, 0, 3, true);
    EXPECT_EQ(next, start);
    backend_->causal_conv1d(nullptr, w.view(), nullptr, next.data(), nullptr, 0, 3, true);
    EXPECT_EQ(next, std::vector<float>(9, 0.0f));
}

TEST_P(CpuOpCausalConv1d, RejectsBadArguments) {
    const OpWeight w(DType::F32, 8, 4, 10);
    std::vector<float> x(16), y(16), state(24);
    test::expect_error(
        [&] { backend_->causal_conv1d(x.data(), w.view(), nullptr, state.data(), y.data(), 2, 6, true); },
        MST_ERR_INVALID_ARGUMENT, {"causal_conv1d", "8x4", "6 channels"});
    test::expect_error([&] { backend_->causal_conv1d(x.data(), w.view(), nullptr, nullptr, y.data(), 2, 8, true); },
                       MST_ERR_INVALID_ARGUMENT, {"causal_conv1d", "null"});
    WeightView bad = w.view();
    bad.dtype = DType::I32;
    test::expect_error([&] { backend_->causal_conv1d(x.data(), bad, nullptr, state.data(), y.data(), 2, 8, true); },
                       MST_ERR_UNSUPPORTED, {"causal_conv1d", "I32"});
}

MST_INSTANTIATE_CPU_OP(CpuOpCausalConv1d);

}  // namespace
}  // namespace mst
