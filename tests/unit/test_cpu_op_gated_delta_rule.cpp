// Backend::gated_delta_rule against a double-precision, token-by-token reference written
// here from the recurrence's definition, for every ISA at 1 and 2 threads.
//
// Error bound (max |y - ref| / max |ref| over outputs and final state): 2e-5. Each output
// is a float32 sum over k_dim of a state that itself accumulates float32 rank-1 updates
// over the tokens; that is a few times what float32 shows here, and far below a wrong
// head, column or decay (>= 1e-2).
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

constexpr double kBound = 2e-5;

struct Inputs {
    Backend::DeltaRuleShape shape;
    std::vector<float> q, k, v, g, beta, state;
};

// Unit-norm q and k (as the layer feeds them), log decays in [-2, 0], beta in (0, 1).
Inputs make_inputs(int64_t n_tokens, int64_t n_heads, int64_t n_k_heads, int64_t k_dim, int64_t v_dim, uint32_t seed) {
    Inputs in;
    in.shape.n_tokens = n_tokens;
    in.shape.n_heads = n_heads;
    in.shape.n_k_heads = n_k_heads;
    in.shape.k_dim = k_dim;
    in.shape.v_dim = v_dim;
    in.shape.scale = 1.0f / std::sqrt(float(k_dim));
    in.q = random_floats(size_t(n_tokens * n_k_heads * k_dim), seed);
    in.k = random_floats(size_t(n_tokens * n_k_heads * k_dim), seed + 1);
    for (std::vector<float> *x : {&in.q, &in.k})
        for (int64_t r = 0; r < n_tokens * n_k_heads; ++r) {
            double sum = 0.0;
            for (int64_t i = 0; i < k_dim; ++i)
                sum += double((*x)[size_t(r * k_dim + i)]) * (*x)[size_t(r * k_dim + i)];
            for (int64_t i = 0; i < k_dim; ++i)
                (*x)[size_t(r * k_dim + i)] = float((*x)[size_t(r * k_dim + i)] / std::sqrt(sum));
        }
    in.v = random_floats(size_t(n_tokens * n_heads * v_dim), seed + 2, -2.0f, 2.0f);
    in.g = random_floats(size_t(n_tokens * n_heads), seed + 3, -2.0f, 0.0f);
    in.beta = random_floats(size_t(n_tokens * n_heads), seed + 4, 0.05f, 0.95f);
    in.state = random_floats(size_t(n_heads * k_dim * v_dim), seed + 5);
    return in;
}

// The recurrence as written in the op's contract, in double: out then the final state.
void reference(const Inputs &in, bool with_state, std::vector<double> &out, std::vector<double> &state) {
    const auto &s = in.shape;
    state.assign(size_t(s.n_heads * s.k_dim * s.v_dim), 0.0);
    if (with_state) state.assign(in.state.begin(), in.state.end());
    out.assign(size_t(s.n_tokens * s.n_heads * s.v_dim), 0.0);
    const int64_t group = s.n_heads / s.n_k_heads;
    for (int64_t t = 0; t < s.n_tokens; ++t)
        for (int64_t h = 0; h < s.n_heads; ++h) {
            const int64_t kh = h / group;
            const float *q = in.q.data() + (t * s.n_k_heads + kh) * s.k_dim;
            const float *k = in.k.data() + (t * s.n_k_heads + kh) * s.k_dim;
            const float *v = in.v.data() + (t * s.n_heads + h) * s.v_dim;
            double *S = state.data() + h * s.k_dim * s.v_dim;
            const double decay = std::exp(double(in.g[size_t(t * s.n_heads + h)]));
            const double beta = in.beta[size_t(t * s.n_heads + h)];
            for (int64_t i = 0; i < s.k_dim * s.v_dim; ++i) S[i] *= decay;
            for (int64_t j = 0; j < s.v_dim; ++j) {
                double kv = 0.0;
                for (int64_t i = 0; i < s.k_dim; ++i) kv += S[i * s.v_dim + j] * k[i];
                const double delta = beta * (v[j] - kv);
                double o = 0.0;
                for (int64_t i = 0; i < s.k_dim; ++i) {
                    S[i * s.v_dim + j] += k[i] * delta;
                    o += S[i * s.v_dim + j] * q[i] * double(s.scale);
                }
                out[size_t((t * s.n_heads + h) * s.v_dim + j)] = o;
            }
        }
}

using CpuOpGatedDeltaRule = CpuOpTest;

TEST_P(CpuOpGatedDeltaRule, MatchesReference) {
    struct Case {
        int64_t n_tokens, n_heads, n_k_heads, k_dim, v_dim;
    };
    // Value heads sharing key heads, v_dim off the 16-column tile, one token, Qwen3.5 head size.
    const Case cases[] = {
        {9, 4, 2, 16, 16}, {5, 2, 2, 32, 20}, {1, 3, 1, 8, 40}, {6, 4, 4, 128, 128}, {40, 2, 1, 24, 7}};
    uint32_t seed = 10;
    for (const Case &c : cases)
        for (bool with_state : {false, true}) {
            SCOPED_TRACE(::testing::Message() << "n " << c.n_tokens << " heads " << c.n_heads << "/" << c.n_k_heads
                                              << " dims " << c.k_dim << "x" << c.v_dim << " state " << with_state);
            const Inputs in = make_inputs(c.n_tokens, c.n_heads, c.n_k_heads, c.k_dim, c.v_dim, seed += 10);
            std::vector<float> out(size_t(c.n_tokens * c.n_heads * c.v_dim), NAN), state_out(in.state.size(), NAN);
            backend_->gated_delta_rule(in.q.data(), in.k.data(), in.v.data(), in.g.data(), in.beta.data(),
                                       with_state ? in.state.data() : nullptr, state_out.data(), out.data(), in.shape);
            std::vector<double> ref_out, ref_state;
            reference(in, with_state, ref_out, ref_state);
            EXPECT_LT(normalized_error(out.data(), ref_out), kBound);
            EXPECT_LT(normalized_error(state_out.data(), ref_state), kBound);
        }
}

TEST_P(CpuOpGatedDeltaRule, SplitCallsEqualOneCall) {
    // Decode continues prefill through the state: any split of the tokens into calls, the
    // state updated in place, gives the same outputs bit for bit.
    const Inputs in = make_inputs(11, 4, 2, 32, 24, 77);
    const auto &s = in.shape;
    std::vector<float> whole(size_t(s.n_tokens * s.n_heads * s.v_dim)), whole_state(in.state.size());
    backend_->gated_delta_rule(in.q.data(), in.k.data(), in.v.data(), in.g.data(), in.beta.data(), in.state.data(),
                               whole_state.data(), whole.data(), s);

    std::vector<float> split(whole.size()), state = in.state;
    int64_t t0 = 0;
    for (int64_t len : {1, 3, 1, 4, 2}) {
        Backend::DeltaRuleShape part = s;
        part.n_tokens = len;
        const int64_t qk = t0 * s.n_k_heads * s.k_dim, hv = t0 * s.n_heads * s.v_dim, hh = t0 * s.n_heads;
        backend_->gated_delta_rule(in.q.data() + qk, in.k.data() + qk, in.v.data() + hv, in.g.data() + hh,
                                   in.beta.data() + hh, state.data(), state.data(), split.data() + hv, part);
        t0 += len;
    }
    ASSERT_EQ(t0, s.n_tokens);
    EXPECT_EQ(split, whole);
    EXPECT_EQ(state, whole_state);
}

TEST_P(CpuOpGatedDeltaRule, FullDecayForgetsThePast) {
    // A log decay of -200 at the first token wipes the initial state (exp(-200) underflows
    // to 0), so the result is that of a run from zeros.
    Inputs in = make_inputs(4, 2, 1, 16, 16, 91);
    for (int64_t h = 0; h < in.shape.n_heads; ++h) in.g[size_t(h)] = -200.0f;
    std::vector<float> from_state(size_t(4 * 2 * 16)), from_zero(from_state.size()), st(in.state.size());
    backend_->gated_delta_rule(in.q.data(), in.k.data(), in.v.data(), in.g.data(), in.beta.data(), in.state.data(),
                               st.data(), from_state.data(), in.shape);
    backend_->gated_delta_rule(in.q.data(), in.k.data(), in.v.data(), in.g.data(), in.beta.data(), nullptr, st.data(),
                               from_zero.data(), in.shape);
    EXPECT_EQ(from_state, from_zero);
}

TEST_P(CpuOpGatedDeltaRule, ZeroTokensCopyTheState) {
    Inputs in = make_inputs(0, 2, 2, 8, 8, 5);
    std::vector<float> st(in.state.size(), NAN);
    backend_->gated_delta_rule(nullptr, nullptr, nullptr, nullptr, nullptr, in.state.data(), st.data(), nullptr,
                               in.shape);
    EXPECT_EQ(st, in.state);
}

TEST_P(CpuOpGatedDeltaRule, RejectsBadShapes) {
    Inputs in = make_inputs(2, 4, 2, 8, 8, 3);
    std::vector<float> out(size_t(2 * 4 * 8)), st(in.state.size());
    auto run = [&](const Backend::DeltaRuleShape &s, float *state_out) {
        backend_->gated_delta_rule(in.q.data(), in.k.data(), in.v.data(), in.g.data(), in.beta.data(), nullptr,
                                   state_out, out.data(), s);
    };
    Backend::DeltaRuleShape s = in.shape;
    s.n_k_heads = 3;
    test::expect_error([&] { run(s, st.data()); }, MST_ERR_INVALID_ARGUMENT, {"gated_delta_rule", "multiple"});
    s = in.shape;
    s.k_dim = 0;
    test::expect_error([&] { run(s, st.data()); }, MST_ERR_INVALID_ARGUMENT, {"gated_delta_rule", "k_dim 0"});
    test::expect_error([&] { run(in.shape, nullptr); }, MST_ERR_INVALID_ARGUMENT, {"gated_delta_rule", "null"});
}

MST_INSTANTIATE_CPU_OP(CpuOpGatedDeltaRule);

}  // namespace
}  // namespace mst
