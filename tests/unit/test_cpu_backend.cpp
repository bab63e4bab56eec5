// The CPU backend against naive double-precision references written here, for every ISA
// this machine can run (the others are skipped) at 1 and 2 threads.
//
// Error bounds, each as max |y - ref| / max |ref| over the whole output, with the worst
// value seen on an AVX2 machine (scalar path / AVX2 path):
//   matmul     1e-5  float32 accumulation, up to 4100 products   (2.7e-6 / 5.7e-7)
//   rms_norm   2e-6  float32 sum of squares, two products        (7.5e-7 / 1.4e-7)
//   rope       5e-7  exact cos/sin of the float32 angle, rounded  (1.1e-7 / 1.1e-7)
//   attention  1e-5  float32 dots, polynomial exp, float32 sums  (1.4e-6 / 7.5e-7)
//   silu_mul   5e-7  one float32 exp, a division and a product   (1.1e-7 / 1.1e-7)
// Each leaves room for summation order (thread count, ISA, tiling) and is orders of
// magnitude below what one wrong element, index or mask produces (>= 1e-3).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "cpu_op_fixture.h"
#include "core/error.h"
#include "scoped_env.h"

namespace mst {
namespace {

constexpr double kMatmulBound = 1e-5;
constexpr double kNormBound = 2e-6;
constexpr double kRopeBound = 5e-7;
constexpr double kAttentionBound = 1e-5;
constexpr double kSiluBound = 5e-7;

using test::normalized_error;
using test::OpWeight;
using test::random_floats;

// ---- fixture: one backend per (ISA, threads) ----------------------------------------

using CpuBackendTest = test::CpuOpTest;

// ---- matmul --------------------------------------------------------------------------

using CpuBackendMatmul = CpuBackendTest;

std::vector<double> reference_matmul(const OpWeight &w, const std::vector<float> &x, int64_t n_tokens) {
    std::vector<double> y(size_t(n_tokens * w.rows));
    for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t r = 0; r < w.rows; ++r) {
            double sum = 0.0;
            for (int64_t c = 0; c < w.cols; ++c) sum += w.value[size_t(r * w.cols + c)] * double(x[size_t(t * w.cols + c)]);
            y[size_t(t * w.rows + r)] = sum;
        }
    return y;
}

// Runs one matmul with sentinels after y and checks them and the error bound.
void check_matmul(Backend &backend, DType dtype, int64_t rows, int64_t cols, int64_t n_tokens, uint32_t seed) {
    SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " rows " << rows << " cols " << cols << " n_tokens "
                                      << n_tokens);
    const OpWeight w(dtype, rows, cols, seed);
    const std::vector<float> x = random_floats(size_t(n_tokens * cols), seed + 1);
    const size_t n_out = size_t(n_tokens * rows);
    const std::vector<float> y =
        test::run_guarded(n_out, [&](float *out) { backend.matmul(w.view(), x.data(), out, n_tokens); });
    EXPECT_LT(normalized_error(y, reference_matmul(w, x, n_tokens)), kMatmulBound);
}

TEST_P(CpuBackendMatmul, AllDtypesOddSizes) {
    uint32_t seed = 1;
    for (DType dtype : {DType::F32, DType::F16, DType::BF16})
        for (int64_t cols : {1, 7, 33, 1000})
            for (int64_t rows : {1, 5, 257})
                for (int64_t n_tokens : {1, 3, 17}) check_matmul(*backend_, dtype, rows, cols, n_tokens, seed++);
}

// Enough tokens and columns for several token blocks with a partial last tile, and a
// matrix large enough to be split between threads.
TEST_P(CpuBackendMatmul, BlockedPrefillShapes) {
    uint32_t seed = 500;
    for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
        check_matmul(*backend_, dtype, 33, 4100, 37, seed++);
        check_matmul(*backend_, dtype, 1031, 96, 70, seed++);
        check_matmul(*backend_, dtype, 4099, 64, 1, seed++);
    }
}

// Every token's row of y depends on that token alone: a token block boundary or a tile
// must not mix them.
TEST_P(CpuBackendMatmul, TokensAreIndependent) {
    const OpWeight w(DType::BF16, 70, 129, 7);
    const int64_t n_tokens = 23;
    const std::vector<float> x = random_floats(size_t(n_tokens * w.cols), 8);
    std::vector<float> y_all(size_t(n_tokens * w.rows)), y_one(size_t(w.rows));
    backend_->matmul(w.view(), x.data(), y_all.data(), n_tokens);
    for (int64_t t = 0; t < n_tokens; ++t) {
        backend_->matmul(w.view(), x.data() + t * w.cols, y_one.data(), 1);
        std::vector<double> ref(y_one.begin(), y_one.end());
        EXPECT_LT(normalized_error(y_all.data() + t * w.rows, ref), kMatmulBound) << "token " << t;
    }
}

TEST_P(CpuBackendMatmul, ZeroColumnsGiveZeros) {
    const float dummy = 0.0f;
    std::vector<float> y(6, 1.0f);
    backend_->matmul({DType::BF16, nullptr, 3, 0}, &dummy, y.data(), 2);
    for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST_P(CpuBackendMatmul, RejectsBadArguments) {
    const std::vector<int32_t> ints(4, 1);
    const float x[2] = {1.0f, 2.0f};
    float y[2];
    try {
        backend_->matmul({DType::I32, ints.data(), 2, 2}, x, y, 1);
        FAIL() << "I32 weights were accepted";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), MST_ERR_UNSUPPORTED);
    }
    try {
        backend_->matmul({DType::F32, x, 1, 2}, x, y, -1);
        FAIL() << "negative n_tokens was accepted";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), MST_ERR_INVALID_ARGUMENT);
    }
}

MST_INSTANTIATE_CPU_OP(CpuBackendMatmul);

// ---- rms_norm ------------------------------------------------------------------------

using CpuBackendRmsNorm = CpuBackendTest;

TEST_P(CpuBackendRmsNorm, MatchesReference) {
    uint32_t seed = 100;
    for (DType dtype : {DType::F32, DType::F16, DType::BF16})
        for (int64_t dim : {1, 7, 33, 1000})
            for (int64_t n_rows : {1, 3, 17})
                for (float offset : {0.0f, 1.0f})
                    for (bool in_place : {false, true}) {
                        SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " dim " << dim << " rows " << n_rows
                                                          << " offset " << offset << " in_place " << in_place);
                        const OpWeight w(dtype, 1, dim, seed++);
                        const std::vector<float> x = random_floats(size_t(n_rows * dim), seed++, -3.0f, 3.0f);
                        const float eps = 1e-6f;
                        std::vector<double> ref(x.size());
                        for (int64_t r = 0; r < n_rows; ++r) {
                            double ss = 0.0;
                            for (int64_t i = 0; i < dim; ++i) ss += double(x[size_t(r * dim + i)]) * x[size_t(r * dim + i)];
                            const double inv = 1.0 / std::sqrt(ss / double(dim) + double(eps));
                            for (int64_t i = 0; i < dim; ++i)
                                ref[size_t(r * dim + i)] = x[size_t(r * dim + i)] * inv * (offset + w.value[size_t(i)]);
                        }
                        std::vector<float> y = x;
                        backend_->rms_norm(in_place ? y.data() : x.data(), w.view(), offset, eps, y.data(), n_rows, dim);
                        EXPECT_LT(normalized_error(y, ref), kNormBound);
                    }
}

TEST_P(CpuBackendRmsNorm, RejectsWrongWeightSize) {
    const OpWeight w(DType::F32, 1, 8, 1);
    std::vector<float> x(9, 1.0f);
    try {
        backend_->rms_norm(x.data(), w.view(), 0.0f, 1e-6f, x.data(), 1, 9);
        FAIL() << "a weight of 8 elements normed 9";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), MST_ERR_INVALID_ARGUMENT);
    }
}

MST_INSTANTIATE_CPU_OP(CpuBackendRmsNorm);

// ---- rope ----------------------------------------------------------------------------

using CpuBackendRope = CpuBackendTest;

std::vector<float> rope_inv_freq(int32_t rotary_dim, double base) {
    std::vector<float> f(size_t(rotary_dim / 2));
    for (size_t i = 0; i < f.size(); ++i) f[i] = float(1.0 / std::pow(base, double(2 * i) / rotary_dim));
    return f;
}

TEST_P(CpuBackendRope, MatchesReference) {
    struct Shape {
        int64_t head_dim;
        int32_t rotary_dim;
    };
    uint32_t seed = 200;
    for (const Shape s : {Shape{2, 2}, Shape{8, 8}, Shape{64, 64}, Shape{64, 32}, Shape{80, 64}, Shape{33, 16}})
        for (bool interleaved : {false, true})
            for (float factor : {1.0f, 1.3f})
                for (int64_t n_tokens : {1, 3, 17}) {
                    SCOPED_TRACE(::testing::Message() << "head_dim " << s.head_dim << " rotary " << s.rotary_dim
                                                      << " interleaved " << interleaved << " factor " << factor
                                                      << " n_tokens " << n_tokens);
                    const int64_t n_heads = 5;
                    const std::vector<float> inv_freq = rope_inv_freq(s.rotary_dim, 10000.0);
                    std::vector<int32_t> positions(static_cast<size_t>(n_tokens));
                    std::mt19937 rng(seed++);
                    for (int32_t &p : positions) p = int32_t(rng() % 131072);
                    positions[0] = 0;
                    const std::vector<float> x0 = random_floats(size_t(n_tokens * n_heads * s.head_dim), seed++);

                    std::vector<double> ref(x0.begin(), x0.end());
                    const int64_t half = s.rotary_dim / 2;
                    for (int64_t t = 0; t < n_tokens; ++t)
                        for (int64_t h = 0; h < n_heads; ++h)
                            for (int64_t i = 0; i < half; ++i) {
                                const double theta = double(float(positions[size_t(t)]) * inv_freq[size_t(i)]);
                                const double c = std::cos(theta) * factor, sn = std::sin(theta) * factor;
                                const int64_t base = (t * n_heads + h) * s.head_dim;
                                const int64_t a = base + (interleaved ? 2 * i : i);
                                const int64_t b = interleaved ? a + 1 : a + half;
                                const double xa = x0[size_t(a)], xb = x0[size_t(b)];
                                ref[size_t(a)] = xa * c - xb * sn;
                                ref[size_t(b)] = xb * c + xa * sn;
                            }

                    std::vector<float> x = x0;
                    RopeParams p;
                    p.rotary_dim = s.rotary_dim;
                    p.inv_freq = inv_freq.data();
                    p.attention_factor = factor;
                    p.interleaved = interleaved;
                    backend_->rope(x.data(), n_tokens, n_heads, s.head_dim, positions.data(), p);
                    EXPECT_LT(normalized_error(x, ref), kRopeBound);
                    // Dimensions past rotary_dim are untouched, bit for bit.
                    for (int64_t row = 0; row < n_tokens * n_heads; ++row)
                        for (int64_t i = s.rotary_dim; i < s.head_dim; ++i)
                            ASSERT_EQ(x[size_t(row * s.head_dim + i)], x0[size_t(row * s.head_dim + i)]);
                }
}

// Rotary embeddings make q.k depend on the distance between positions only.
TEST_P(CpuBackendRope, DotProductDependsOnDistanceOnly) {
    const int64_t head_dim = 64;
    const std::vector<float> inv_freq = rope_inv_freq(int32_t(head_dim), 10000.0);
    RopeParams p;
    p.rotary_dim = int32_t(head_dim);
    p.inv_freq = inv_freq.data();
    const std::vector<float> q0 = random_floats(size_t(head_dim), 1), k0 = random_floats(size_t(head_dim), 2);
    auto rotated_dot = [&](int32_t pq, int32_t pk) {
        std::vector<float> q = q0, k = k0;
        backend_->rope(q.data(), 1, 1, head_dim, &pq, p);
        backend_->rope(k.data(), 1, 1, head_dim, &pk, p);
        double d = 0.0;
        for (int64_t i = 0; i < head_dim; ++i) d += double(q[size_t(i)]) * k[size_t(i)];
        return d;
    };
    EXPECT_NEAR(rotated_dot(10, 3), rotated_dot(107, 100), 1e-4);
    EXPECT_GT(std::abs(rotated_dot(10, 3) - rotated_dot(10, 4)), 1e-3);
}

TEST_P(CpuBackendRope, RejectsOddRotaryDim) {
    std::vector<float> x(8, 1.0f), inv_freq(2, 1.0f);
    const int32_t pos = 0;
    RopeParams p;
    p.rotary_dim = 3;
    p.inv_freq = inv_freq.data();
    EXPECT_THROW(backend_->rope(x.data(), 1, 1, 8, &pos, p), Error);
}

MST_INSTANTIATE_CPU_OP(CpuBackendRope);

// ---- attention -----------------------------------------------------------------------

using CpuBackendAttention = CpuBackendTest;

// Random q and caches for one attention configuration.
struct AttentionCase {
    AttentionParams p;
    std::vector<float> q, k, v, sinks;

    AttentionCase(int32_t n_tokens, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, int32_t v_head_dim,
                  int32_t pos0, int32_t window, bool with_sinks, uint32_t seed) {
        p.n_tokens = n_tokens;
        p.n_heads = n_heads;
        p.n_kv_heads = n_kv_heads;
        p.head_dim = head_dim;
        p.v_head_dim = v_head_dim;
        p.pos0 = pos0;
        p.sliding_window = window;
        p.scale = float(1.0 / std::sqrt(double(head_dim)));
        // Room for 3 more positions than used, so kv_stride is not the minimum.
        p.kv_stride = int64_t(pos0 + n_tokens + 3) * std::max(head_dim, v_head_dim);
        // Scaled up so the softmax is far from uniform and the mask matters.
        q = random_floats(size_t(n_tokens * n_heads * head_dim), seed, -2.0f, 2.0f);
        k = random_floats(size_t(n_kv_heads * p.kv_stride), seed + 1, -2.0f, 2.0f);
        v = random_floats(size_t(n_kv_heads * p.kv_stride), seed + 2);
        if (with_sinks) {
            sinks = random_floats(size_t(n_heads), seed + 3, -1.0f, 3.0f);
            p.sinks = sinks.data();
        }
    }

    std::vector<float> run(Backend &backend) const {
        std::vector<float> out(size_t(p.n_tokens * p.n_heads * p.v_head_dim), NAN);
        backend.attention(q.data(), k.data(), v.data(), out.data(), p);
        return out;
    }

    std::vector<double> reference() const {
        std::vector<double> out(size_t(p.n_tokens * p.n_heads * p.v_head_dim));
        const int32_t group = p.n_heads / p.n_kv_heads;
        for (int32_t t = 0; t < p.n_tokens; ++t)
            for (int32_t h = 0; h < p.n_heads; ++h) {
                const int32_t pos = p.pos0 + t, kv = h / group;
                const int32_t first = p.sliding_window > 0 ? std::max(0, pos - p.sliding_window + 1) : 0;
                std::vector<double> logits;
                for (int32_t j = first; j <= pos; ++j) {
                    double dot = 0.0;
                    for (int32_t d = 0; d < p.head_dim; ++d)
                        dot += double(q[size_t((t * p.n_heads + h) * p.head_dim + d)]) *
                               k[size_t(kv * p.kv_stride + j * p.head_dim + d)];
                    logits.push_back(dot * p.scale);
                }
                double m = *std::max_element(logits.begin(), logits.end());
                if (p.sinks) m = std::max(m, double(p.sinks[h]));
                double denom = p.sinks ? std::exp(double(p.sinks[h]) - m) : 0.0;
                for (double l : logits) denom += std::exp(l - m);
                for (int32_t d = 0; d < p.v_head_dim; ++d) {
                    double acc = 0.0;
                    for (int32_t j = first; j <= pos; ++j)
                        acc += std::exp(logits[size_t(j - first)] - m) * v[size_t(kv * p.kv_stride + j * p.v_head_dim + d)];
                    out[size_t((t * p.n_heads + h) * p.v_head_dim + d)] = acc / denom;
                }
            }
        return out;
    }
};

TEST_P(CpuBackendAttention, MatchesReference) {
    struct Heads {
        int32_t n_heads, n_kv_heads, head_dim, v_head_dim;
    };
    uint32_t seed = 300;
    for (const Heads hs : {Heads{4, 4, 16, 16}, Heads{6, 2, 33, 7}, Heads{4, 1, 64, 64}, Heads{8, 2, 5, 12}})
        for (int32_t n_tokens : {1, 3, 17})
            for (int32_t pos0 : {0, 11})
                for (int32_t window : {0, 5})
                    for (bool sinks : {false, true}) {
                        SCOPED_TRACE(::testing::Message() << "heads " << hs.n_heads << "/" << hs.n_kv_heads << " dims "
                                                          << hs.head_dim << "/" << hs.v_head_dim << " n_tokens "
                                                          << n_tokens << " pos0 " << pos0 << " window " << window
                                                          << " sinks " << sinks);
                        const AttentionCase c(n_tokens, hs.n_heads, hs.n_kv_heads, hs.head_dim, hs.v_head_dim, pos0,
                                              window, sinks, seed);
                        seed += 4;
                        EXPECT_LT(normalized_error(c.run(*backend_), c.reference()), kAttentionBound);
                    }
}

// A prompt's queries walk the keys in blocks of 256 with an online softmax: prompts
// that cross one or several block boundaries (odd lengths, a window spanning a boundary,
// sinks, grouped heads) against the float64 reference.
TEST_P(CpuBackendAttention, PromptOverSeveralKeyBlocks) {
    struct Prompt {
        int32_t n_tokens, pos0, window;
        bool sinks;
    };
    uint32_t seed = 900;
    for (const Prompt pr : {Prompt{37, 300, 0, false}, Prompt{301, 0, 0, true}, Prompt{45, 490, 100, false},
                            Prompt{19, 700, 0, true}, Prompt{260, 3, 257, false}}) {
        SCOPED_TRACE(::testing::Message() << "n_tokens " << pr.n_tokens << " pos0 " << pr.pos0 << " window "
                                          << pr.window << " sinks " << pr.sinks);
        const AttentionCase c(pr.n_tokens, 6, 2, 33, 7, pr.pos0, pr.window, pr.sinks, seed);
        seed += 4;
        EXPECT_LT(normalized_error(c.run(*backend_), c.reference()), kAttentionBound);
    }
}

// A long context exercises the vector exp and the score buffer at a realistic size.
TEST_P(CpuBackendAttention, LongContextDecode) {
    const AttentionCase c(1, 8, 2, 64, 64, 1500, 0, true, 77);
    EXPECT_LT(normalized_error(c.run(*backend_), c.reference()), kAttentionBound);
}

// Changing the key and value at position j changes no query before j, and changes j's.
TEST_P(CpuBackendAttention, CausalMask) {
    const int32_t n = 9, j = 5;
    AttentionCase c(n, 2, 1, 8, 8, 0, 0, false, 11);
    const std::vector<float> before = c.run(*backend_);
    for (int32_t d = 0; d < 8; ++d) {
        c.k[size_t(j * 8 + d)] += 1.5f;
        c.v[size_t(j * 8 + d)] -= 0.75f;
    }
    const std::vector<float> after = c.run(*backend_);
    const size_t per_token = size_t(2 * 8);
    for (size_t i = 0; i < size_t(j) * per_token; ++i) ASSERT_EQ(before[i], after[i]) << "output " << i;
    double change = 0.0;
    for (size_t i = size_t(j) * per_token; i < size_t(j + 1) * per_token; ++i)
        change = std::max(change, double(std::abs(before[i] - after[i])));
    EXPECT_GT(change, 1e-3);
}

// With window w, query p sees keys (p - w, p]: p - w is out, p - w + 1 is in.
TEST_P(CpuBackendAttention, SlidingWindowBoundary) {
    const int32_t window = 4, pos = 10;
    AttentionCase c(1, 2, 2, 8, 8, pos, window, false, 12);
    const std::vector<float> base = c.run(*backend_);
    auto perturbed = [&](int32_t j) {
        AttentionCase d = c;
        d.p.sinks = nullptr;
        for (int32_t kv = 0; kv < 2; ++kv)
            for (int32_t i = 0; i < 8; ++i) d.v[size_t(kv * d.p.kv_stride + j * 8 + i)] += 1.0f;
        return d.run(*backend_);
    };
    EXPECT_EQ(perturbed(pos - window), base);
    const std::vector<float> inside = perturbed(pos - window + 1);
    double change = 0.0;
    for (size_t i = 0; i < base.size(); ++i) change = std::max(change, double(std::abs(inside[i] - base[i])));
    EXPECT_GT(change, 1e-3);
}

// A sink adds exp(sink) to the denominator only: the output is the sinkless output times
// sum / (sum + exp(sink)), with sum the sinkless denominator (max subtracted out).
TEST_P(CpuBackendAttention, SinkScalesOutput) {
    AttentionCase c(1, 1, 1, 4, 4, 6, 0, false, 13);
    // Logits of this case, for the expected scale.
    double sum = 0.0;
    for (int32_t j = 0; j <= 6; ++j) {
        double dot = 0.0;
        for (int32_t d = 0; d < 4; ++d) dot += double(c.q[size_t(d)]) * c.k[size_t(j * 4 + d)];
        sum += std::exp(dot * c.p.scale);
    }
    const std::vector<float> plain = c.run(*backend_);
    const float sink = 1.7f;
    c.p.sinks = &sink;
    const std::vector<float> with_sink = c.run(*backend_);
    const double factor = sum / (sum + std::exp(double(sink)));
    for (size_t d = 0; d < 4; ++d) EXPECT_NEAR(with_sink[d], plain[d] * factor, 1e-6);
    // A sink far below every logit changes nothing measurable.
    const float tiny = -1e4f;
    c.p.sinks = &tiny;
    const std::vector<float> negligible = c.run(*backend_);
    for (size_t d = 0; d < 4; ++d) EXPECT_NEAR(negligible[d], plain[d], 1e-6);
}

// Query head h reads kv head h / (n_heads / n_kv_heads): with 4 query heads on 2 kv
// heads, changing kv head 1 changes heads 2 and 3 only.
TEST_P(CpuBackendAttention, GqaMapping) {
    AttentionCase c(2, 4, 2, 8, 8, 3, 0, false, 14);
    const std::vector<float> before = c.run(*backend_);
    for (int64_t i = 0; i < c.p.kv_stride; ++i) c.v[size_t(c.p.kv_stride + i)] += 0.5f;
    const std::vector<float> after = c.run(*backend_);
    for (int32_t t = 0; t < 2; ++t)
        for (int32_t h = 0; h < 4; ++h) {
            double change = 0.0;
            for (int32_t d = 0; d < 8; ++d) {
                const size_t i = size_t((t * 4 + h) * 8 + d);
                change = std::max(change, double(std::abs(after[i] - before[i])));
            }
            if (h < 2) {
                EXPECT_EQ(change, 0.0) << "token " << t << " head " << h;
            } else {
                EXPECT_GT(change, 0.1) << "token " << t << " head " << h;
            }
        }
}

// Decoding token by token (pos0 > 0) and prefilling in chunks give the rows of one full
// prefill.
TEST_P(CpuBackendAttention, IncrementalEqualsFullPrefill) {
    const int32_t n = 13, n_heads = 4, hd = 16;
    for (int32_t window : {0, 6})
        for (bool sinks : {false, true}) {
            SCOPED_TRACE(::testing::Message() << "window " << window << " sinks " << sinks);
            const AttentionCase full(n, n_heads, 2, hd, hd, 0, window, sinks, 15);
            const std::vector<float> all = full.run(*backend_);
            const size_t row = size_t(n_heads * hd);
            auto check_chunk = [&](int32_t pos0, int32_t len) {
                AttentionCase part = full;
                part.p.sinks = full.p.sinks ? full.sinks.data() : nullptr;
                part.p.pos0 = pos0;
                part.p.n_tokens = len;
                part.q.assign(full.q.begin() + pos0 * int64_t(row), full.q.begin() + (pos0 + len) * int64_t(row));
                const std::vector<float> got = part.run(*backend_);
                const std::vector<double> want(all.begin() + pos0 * int64_t(row), all.begin() + (pos0 + len) * int64_t(row));
                EXPECT_LT(normalized_error(got, want), 1e-6) << "pos0 " << pos0 << " len " << len;
            };
            for (int32_t t = 0; t < n; ++t) check_chunk(t, 1);
            check_chunk(0, 5);
            check_chunk(5, 8);
        }
}

TEST_P(CpuBackendAttention, RejectsBadHeads) {
    AttentionCase c(1, 4, 2, 8, 8, 0, 0, false, 16);
    c.p.n_kv_heads = 3;
    EXPECT_THROW(c.run(*backend_), Error);
    c.p.n_kv_heads = 2;
    c.p.kv_stride = 4;
    EXPECT_THROW(c.run(*backend_), Error);
}

MST_INSTANTIATE_CPU_OP(CpuBackendAttention);

// ---- silu_mul ------------------------------------------------------------------------

using CpuBackendSiluMul = CpuBackendTest;

TEST_P(CpuBackendSiluMul, MatchesReference) {
    uint32_t seed = 400;
    for (int64_t n : {1, 7, 33, 1000, 100003})
        for (int alias : {0, 1, 2}) {
            SCOPED_TRACE(::testing::Message() << "n " << n << " alias " << alias);
            std::vector<float> gate = random_floats(size_t(n), seed++, -8.0f, 8.0f);
            std::vector<float> up = random_floats(size_t(n), seed++, -2.0f, 2.0f);
            std::vector<double> ref(static_cast<size_t>(n));
            for (size_t i = 0; i < ref.size(); ++i) ref[i] = gate[i] / (1.0 + std::exp(-double(gate[i]))) * up[i];
            std::vector<float> separate(static_cast<size_t>(n));
            float *out = alias == 0 ? separate.data() : alias == 1 ? gate.data() : up.data();
            backend_->silu_mul(gate.data(), up.data(), out, n);
            EXPECT_LT(normalized_error(out, ref), kSiluBound);
        }
}

TEST_P(CpuBackendSiluMul, ExtremeGatesStayFinite) {
    const std::vector<float> gate = {-1000.0f, -100.0f, 0.0f, 100.0f, 1000.0f};
    const std::vector<float> up(gate.size(), 2.0f);
    std::vector<float> out(gate.size());
    backend_->silu_mul(gate.data(), up.data(), out.data(), int64_t(gate.size()));
    EXPECT_EQ(out[0], 0.0f);
    EXPECT_NEAR(out[1], 0.0f, 1e-30f);
    EXPECT_EQ(out[2], 0.0f);
    EXPECT_FLOAT_EQ(out[3], 200.0f);
    EXPECT_FLOAT_EQ(out[4], 2000.0f);
}

MST_INSTANTIATE_CPU_OP(CpuBackendSiluMul);

// ---- registry and ISA selection ------------------------------------------------------

using test::ScopedEnv;

mst_status error_code(const std::function<void()> &fn) {
    try {
        fn();
    } catch (const Error &e) {
        return e.code();
    }
    return MST_OK;
}

TEST(CpuBackendRegistry, ListsCpu) {
    const std::vector<BackendInfo> backends = available_backends();
    ASSERT_FALSE(backends.empty());
    EXPECT_EQ(backends[0].name, "cpu");
    EXPECT_NE(backends[0].description.find(cpu_isa_name(cpu_isa_best())), std::string::npos);
}

TEST(CpuBackendRegistry, CreatesCpuAndAuto) {
    for (const char *name : {"cpu", "auto"}) {
        const std::unique_ptr<Backend> b = create_backend(name, 2);
        ASSERT_NE(b, nullptr);
        EXPECT_STREQ(b->name(), "cpu");
        EXPECT_EQ(b->n_threads(), 2);
    }
    EXPECT_EQ(create_backend("cpu", 0)->n_threads(), omp_get_num_procs());
}

TEST(CpuBackendRegistry, UnknownNameListsAvailable) {
    try {
        create_backend("quantum", 1);
        FAIL() << "an unknown backend was created";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), MST_ERR_INVALID_ARGUMENT);
        EXPECT_NE(std::string(e.what()).find("quantum"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("cpu"), std::string::npos);
    }
}

TEST(CpuBackendRegistry, NegativeThreadsRejected) {
    EXPECT_EQ(error_code([] { create_backend("cpu", -1); }), MST_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(error_code([] { CpuBackend b(0, CpuIsa::Scalar); }), MST_ERR_INVALID_ARGUMENT);
}

TEST(CpuBackendIsa, EnvironmentForcesIsa) {
    {
        const ScopedEnv env("MST_CPU_ISA", "scalar");
        const std::unique_ptr<Backend> b = create_backend("cpu", 1);
        EXPECT_EQ(dynamic_cast<CpuBackend &>(*b).isa(), CpuIsa::Scalar);
    }
    {
        const ScopedEnv env("MST_CPU_ISA", "");
        EXPECT_EQ(dynamic_cast<CpuBackend &>(*create_backend("cpu", 1)).isa(), cpu_isa_best());
    }
    {
        const ScopedEnv env("MST_CPU_ISA", "sse9");
        EXPECT_EQ(error_code([] { create_backend("cpu", 1); }), MST_ERR_INVALID_ARGUMENT);
    }
    for (CpuIsa isa : {CpuIsa::Avx2, CpuIsa::Avx512}) {
        const ScopedEnv env("MST_CPU_ISA", std::string(cpu_isa_name(isa)).c_str());
        if (cpu_isa_supported(isa)) {
            EXPECT_EQ(dynamic_cast<CpuBackend &>(*create_backend("cpu", 1)).isa(), isa);
        } else {
            EXPECT_EQ(error_code([] { create_backend("cpu", 1); }), MST_ERR_UNSUPPORTED);
        }
    }
}

TEST(CpuBackendIsa, BestIsSupportedAndScalarAlwaysIs) {
    EXPECT_TRUE(cpu_isa_supported(CpuIsa::Scalar));
    EXPECT_TRUE(cpu_isa_supported(cpu_isa_best()));
    if (cpu_isa_supported(CpuIsa::Avx512)) {
        EXPECT_TRUE(cpu_isa_supported(CpuIsa::Avx2));
    }
    EXPECT_EQ(cpu_isa_parse("auto"), cpu_isa_best());
}

}  // namespace
}  // namespace mst
