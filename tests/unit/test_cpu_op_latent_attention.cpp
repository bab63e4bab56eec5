// Backend::latent_attention (absorbed MLA) against a double-precision reference: head
// counts that are not a multiple of the kernel's head group, several query tokens
// after a filled cache, long-context decode, causality.
// Bound: 1e-5 of max |ref| (float32 dot products over <= 72 dims, polynomial exp, float32
// sums over <= 400 rows); a wrong row, head or mask is >= 1e-3.
#include <gtest/gtest.h>

#include "core/error.h"
#include "cpu_op_fixture.h"
#include "expect_error.h"

namespace mst {
namespace {

using test::CpuOpTest;
using test::random_floats;

constexpr double kBound = 1e-5;

std::vector<double> reference(const std::vector<float> &q, const std::vector<float> &cache,
                              const LatentAttentionParams &p) {
    const int64_t row = p.latent_dim + p.rope_dim;
    std::vector<double> out(size_t(p.n_tokens * p.n_heads * p.latent_dim), 0.0);
    for (int64_t t = 0; t < p.n_tokens; ++t)
        for (int64_t h = 0; h < p.n_heads; ++h) {
            const float *qh = q.data() + (t * p.n_heads + h) * row;
            const int64_t n_keys = p.pos0 + t + 1;
            std::vector<double> s(static_cast<size_t>(n_keys));
            double max_s = -1e300, sum = 0.0;
            for (int64_t j = 0; j < n_keys; ++j) {
                double dot = 0.0;
                for (int64_t d = 0; d < row; ++d) dot += double(qh[d]) * double(cache[size_t(j * row + d)]);
                s[size_t(j)] = dot * p.scale;
                max_s = std::max(max_s, s[size_t(j)]);
            }
            for (double &v : s) sum += v = std::exp(v - max_s);
            double *o = out.data() + (t * p.n_heads + h) * p.latent_dim;
            for (int64_t j = 0; j < n_keys; ++j)
                for (int64_t d = 0; d < p.latent_dim; ++d)
                    o[d] += s[size_t(j)] / sum * double(cache[size_t(j * row + d)]);
        }
    return out;
}

LatentAttentionParams params(int32_t n_tokens, int32_t n_heads, int32_t latent, int32_t rope, int32_t pos0,
                             float scale) {
    LatentAttentionParams p;
    p.n_tokens = n_tokens;
    p.n_heads = n_heads;
    p.latent_dim = latent;
    p.rope_dim = rope;
    p.pos0 = pos0;
    p.scale = scale;
    return p;
}

void check(CpuBackend &backend, const LatentAttentionParams &p, uint32_t seed) {
    SCOPED_TRACE(::testing::Message() << "tokens " << p.n_tokens << " heads " << p.n_heads << " latent " << p.latent_dim
                                      << " rope " << p.rope_dim << " pos0 " << p.pos0);
    const int64_t row = p.latent_dim + p.rope_dim, n_ctx = p.pos0 + p.n_tokens;
    const std::vector<float> q = random_floats(size_t(p.n_tokens * p.n_heads * row), seed, -2.0f, 2.0f);
    const std::vector<float> cache = random_floats(size_t(n_ctx * row), seed + 1);
    const size_t n_out = size_t(p.n_tokens * p.n_heads * p.latent_dim);
    const std::vector<float> out =
        test::run_guarded(n_out, [&](float *y) { backend.latent_attention(q.data(), cache.data(), y, p); });
    EXPECT_LT(test::normalized_error(out, reference(q, cache, p)), kBound);
}

using CpuOpLatentAttention = CpuOpTest;

TEST_P(CpuOpLatentAttention, MatchesReference) {
    check(*backend_, params(1, 1, 8, 2, 0, 0.5f), 1);
    check(*backend_, params(3, 5, 40, 8, 7, 0.3f), 2);
    check(*backend_, params(6, 9, 32, 16, 0, 0.2f), 3);
    check(*backend_, params(2, 16, 64, 0, 3, 0.125f), 4);
}

TEST_P(CpuOpLatentAttention, LongContextDecode) { check(*backend_, params(1, 16, 48, 8, 399, 0.15f), 5); }

TEST_P(CpuOpLatentAttention, LaterRowsDoNotReachEarlierQueries) {
    const LatentAttentionParams p = params(4, 3, 16, 4, 2, 0.4f);
    const int64_t row = 20, n_ctx = 6;
    const std::vector<float> q = random_floats(size_t(4 * 3 * row), 11);
    std::vector<float> cache = random_floats(size_t(n_ctx * row), 12);
    std::vector<float> before(size_t(4 * 3 * 16)), after(before.size());
    backend_->latent_attention(q.data(), cache.data(), before.data(), p);
    for (int64_t d = 0; d < row; ++d) cache[size_t(5 * row + d)] += 3.0f;  // the last position only
    backend_->latent_attention(q.data(), cache.data(), after.data(), p);
    for (size_t i = 0; i < before.size(); ++i) {
        const bool last_token = i >= size_t(3 * 3 * 16);
        if (last_token) {
            EXPECT_NE(before[i], after[i]) << i;
        } else {
            EXPECT_EQ(before[i], after[i]) << i;
        }
    }
}

TEST_P(CpuOpLatentAttention, RejectsBadParameters) {
    std::vector<float> buf(64);
    test::expect_error(
        [&] { backend_->latent_attention(buf.data(), buf.data(), buf.data(), params(1, 0, 8, 2, 0, 1)); },
        MST_ERR_INVALID_ARGUMENT, {"latent_attention", "n_heads 0"});
    test::expect_error([&] { backend_->latent_attention(nullptr, buf.data(), buf.data(), params(1, 1, 8, 2, 0, 1)); },
                       MST_ERR_INVALID_ARGUMENT, {"null pointer"});
}

MST_INSTANTIATE_CPU_OP(CpuOpLatentAttention);

}  // namespace
}  // namespace mst
