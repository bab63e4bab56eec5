// Multi-head latent attention against a naive double-precision transcription of the
// reference (per-head keys and values expanded from every latent, interleaved RoPE on
// the decoupled part, causal softmax), for both attention paths, with and without the
// low-rank query, across successive calls that fill the latent cache.
// Bound: 2e-5 relative Frobenius error (float32 projections of depth <= 64, two RMSNorms,
// rope, softmax); one wrong head, position or rope pair gives >= 1e-2.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "format/model_config.h"
#include "model/mla_attention.h"

namespace mst {
namespace {

constexpr double kBound = 2e-5;

struct Matrix {
    int64_t rows = 0, cols = 0;
    std::vector<float> v;
    WeightView view() const { return {DType::F32, v.data(), rows, cols}; }
    Linear linear() const { return Linear{view(), {}, {}, {}}; }
};

Matrix random_matrix(int64_t rows, int64_t cols, std::mt19937 &rng, float scale) {
    std::uniform_real_distribution<float> dist(-scale, scale);
    Matrix m{rows, cols, std::vector<float>(size_t(rows * cols))};
    for (float &x : m.v) x = dist(rng);
    return m;
}

struct Layer {
    MlaShape shape;
    Matrix q, q_a, q_b, q_a_norm, kv_a, kv_a_norm, kv_b, o;
    RopeTable rope;
    int64_t hidden = 32;

    Layer(int32_t q_lora, bool interleaved, uint32_t seed) {
        std::mt19937 rng(seed);
        shape.n_heads = 3;
        shape.q_lora_rank = q_lora;
        shape.kv_lora_rank = 16;
        shape.qk_nope_dim = 8;
        shape.qk_rope_dim = 6;
        shape.v_head_dim = 10;
        shape.norm_eps = 1e-6f;
        shape.softmax_scale = 0.3f;
        const int64_t H = hidden, heads = 3, qk = 14;
        if (q_lora > 0) {
            q_a = random_matrix(q_lora, H, rng, 0.3f);
            q_a_norm = random_matrix(1, q_lora, rng, 1.0f);
            q_b = random_matrix(heads * qk, q_lora, rng, 0.3f);
        } else {
            q = random_matrix(heads * qk, H, rng, 0.3f);
        }
        kv_a = random_matrix(16 + 6, H, rng, 0.3f);
        kv_a_norm = random_matrix(1, 16, rng, 1.0f);
        kv_b = random_matrix(heads * (8 + 10), 16, rng, 0.3f);
        o = random_matrix(H, heads * 10, rng, 0.3f);
        rope.rotary_dim = 6;
        rope.inv_freq = {1.0f, 0.1f, 0.01f};
        rope.attention_factor = 1.2f;
        rope.interleaved = interleaved;
    }

    MlaWeights weights() const {
        MlaWeights w;
        if (shape.q_lora_rank > 0) {
            w.q_a = q_a.linear();
            w.q_a_norm = q_a_norm.view();
            w.q_b = q_b.linear();
        } else {
            w.q = q.linear();
        }
        w.kv_a = kv_a.linear();
        w.kv_a_norm = kv_a_norm.view();
        w.kv_b = kv_b.view();
        w.o = o.linear();
        return w;
    }
};

std::vector<double> project(const Matrix &w, const std::vector<double> &x) {
    std::vector<double> y(size_t(w.rows), 0.0);
    for (int64_t r = 0; r < w.rows; ++r)
        for (int64_t c = 0; c < w.cols; ++c) y[size_t(r)] += double(w.v[size_t(r * w.cols + c)]) * x[size_t(c)];
    return y;
}

void rms_norm(std::vector<double> &x, const Matrix &w, double eps) {
    double ss = 0.0;
    for (double v : x) ss += v * v;
    const double inv = 1.0 / std::sqrt(ss / double(x.size()) + eps);
    for (size_t i = 0; i < x.size(); ++i) x[i] *= inv * double(w.v[i]);
}

// The reference's rotation of x (rotary_dim values) at position pos.
void rotate(double *x, const RopeTable &rope, int64_t pos) {
    const int64_t half = rope.rotary_dim / 2;
    std::vector<double> out(static_cast<size_t>(rope.rotary_dim));
    for (int64_t i = 0; i < half; ++i) {
        const double angle = double(float(pos) * rope.inv_freq[size_t(i)]);
        const double c = std::cos(angle) * rope.attention_factor, s = std::sin(angle) * rope.attention_factor;
        const double a = rope.interleaved ? x[2 * i] : x[i], b = rope.interleaved ? x[2 * i + 1] : x[i + half];
        // Interleaved output is de-interleaved (evens then odds), as the reference writes it.
        out[size_t(i)] = a * c - b * s;
        out[size_t(i + half)] = b * c + a * s;
    }
    std::copy(out.begin(), out.end(), x);
}

// Outputs [n_total][hidden] for tokens 0..n_total-1 in one causal pass.
std::vector<double> reference(const Layer &L, const std::vector<float> &h, int64_t n_total) {
    const MlaShape &s = L.shape;
    const int64_t H = L.hidden, heads = s.n_heads, nope = s.qk_nope_dim, rope = s.qk_rope_dim, v = s.v_head_dim;
    const int64_t qk = nope + rope, r = s.kv_lora_rank;
    std::vector<std::vector<double>> q(static_cast<size_t>(n_total)), k(static_cast<size_t>(n_total)),
        val(static_cast<size_t>(n_total));
    for (int64_t t = 0; t < n_total; ++t) {
        const std::vector<double> x(h.begin() + t * H, h.begin() + (t + 1) * H);
        if (s.q_lora_rank > 0) {
            std::vector<double> low = project(L.q_a, x);
            rms_norm(low, L.q_a_norm, s.norm_eps);
            q[size_t(t)] = project(L.q_b, low);
        } else {
            q[size_t(t)] = project(L.q, x);
        }
        std::vector<double> compressed = project(L.kv_a, x);
        std::vector<double> latent(compressed.begin(), compressed.begin() + r);
        std::vector<double> k_rope(compressed.begin() + r, compressed.end());
        rms_norm(latent, L.kv_a_norm, s.norm_eps);
        rotate(k_rope.data(), L.rope, t);
        const std::vector<double> kv = project(L.kv_b, latent);
        for (int64_t hd = 0; hd < heads; ++hd) {
            rotate(q[size_t(t)].data() + hd * qk + nope, L.rope, t);
            for (int64_t d = 0; d < nope; ++d) k[size_t(t)].push_back(kv[size_t(hd * (nope + v) + d)]);
            for (int64_t d = 0; d < rope; ++d) k[size_t(t)].push_back(k_rope[size_t(d)]);
            for (int64_t d = 0; d < v; ++d) val[size_t(t)].push_back(kv[size_t(hd * (nope + v) + nope + d)]);
        }
    }
    std::vector<double> out;
    for (int64_t t = 0; t < n_total; ++t) {
        std::vector<double> attn(size_t(heads * v), 0.0);
        for (int64_t hd = 0; hd < heads; ++hd) {
            std::vector<double> p(size_t(t + 1));
            double max_p = -1e300, sum = 0.0;
            for (int64_t j = 0; j <= t; ++j) {
                double dot = 0.0;
                for (int64_t d = 0; d < qk; ++d)
                    dot += q[size_t(t)][size_t(hd * qk + d)] * k[size_t(j)][size_t(hd * qk + d)];
                p[size_t(j)] = dot * s.softmax_scale;
                max_p = std::max(max_p, p[size_t(j)]);
            }
            for (double &x : p) sum += x = std::exp(x - max_p);
            for (int64_t j = 0; j <= t; ++j)
                for (int64_t d = 0; d < v; ++d)
                    attn[size_t(hd * v + d)] += p[size_t(j)] / sum * val[size_t(j)][size_t(hd * v + d)];
        }
        const std::vector<double> y = project(L.o, attn);
        out.insert(out.end(), y.begin(), y.end());
    }
    return out;
}

double relative_error(const std::vector<float> &got, const std::vector<double> &want) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < want.size(); ++i) {
        num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
        den += want[i] * want[i];
    }
    return std::sqrt(num / den);
}

struct Case {
    int32_t q_lora;
    bool interleaved;
    MlaPath path;
};

class MlaAttention : public ::testing::TestWithParam<Case> {};

TEST_P(MlaAttention, MatchesNaiveReferenceAcrossCalls) {
    const Case c = GetParam();
    const Layer L(c.q_lora, c.interleaved, 42);
    CpuBackend backend(2, cpu_isa_best());
    const int64_t n_total = 12;
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> h(size_t(n_total * L.hidden));
    for (float &x : h) x = dist(rng);

    LatentKvCache cache(2, 16, L.shape.kv_lora_rank, L.shape.qk_rope_dim);
    std::vector<float> out(h.size());
    const MlaWeights w = L.weights();
    int32_t pos = 0;
    for (int64_t n : {5, 3, 1, 1, 2}) {  // a prefill, a batch, decode steps
        mla_attention(backend, w, L.shape, L.rope, cache, 1, h.data() + pos * L.hidden, n, pos,
                      out.data() + pos * L.hidden, c.path);
        pos += int32_t(n);
    }
    ASSERT_EQ(pos, n_total);
    EXPECT_LT(relative_error(out, reference(L, h, n_total)), kBound);
    // Layer 0 of the cache was never written.
    for (int64_t i = 0; i < 16 * cache.row_dim(); ++i) ASSERT_EQ(cache.rows(0)[i], 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Paths, MlaAttention,
                         ::testing::Values(Case{24, true, MlaPath::Expanded}, Case{24, true, MlaPath::Absorbed},
                                           Case{24, true, MlaPath::Automatic}, Case{0, true, MlaPath::Absorbed},
                                           Case{0, false, MlaPath::Expanded}, Case{24, false, MlaPath::Absorbed}),
                         [](const auto &param_info) {
                             const Case &c = param_info.param;
                             const char *path = c.path == MlaPath::Expanded   ? "expanded"
                                                : c.path == MlaPath::Absorbed ? "absorbed"
                                                                              : "automatic";
                             return std::string(path) + (c.q_lora ? "_low_rank_q" : "_plain_q") +
                                    (c.interleaved ? "_interleaved" : "_half");
                         });

MlaShape deepseek_v3_shape() {
    MlaShape s;
    s.n_heads = 128;
    s.q_lora_rank = 1536;
    s.kv_lora_rank = 512;
    s.qk_nope_dim = 128;
    s.qk_rope_dim = 64;
    s.v_head_dim = 128;
    return s;
}

TEST(MlaPathChoice, DecodeAbsorbsPrefillExpands) {
    const MlaShape s = deepseek_v3_shape();
    EXPECT_EQ(choose_mla_path(s, 1, 1), MlaPath::Absorbed);
    EXPECT_EQ(choose_mla_path(s, 1, 4095), MlaPath::Absorbed);
    // The very first token: expanding one latent is cheaper than folding kv_b into the query.
    EXPECT_EQ(choose_mla_path(s, 1, 0), MlaPath::Expanded);
    EXPECT_EQ(choose_mla_path(s, 512, 0), MlaPath::Expanded);
    EXPECT_EQ(choose_mla_path(s, 4096, 0), MlaPath::Expanded);
    // A short batch after a long context: expanding the whole context costs more.
    EXPECT_EQ(choose_mla_path(s, 4, 4000), MlaPath::Absorbed);
}

TEST(MlaSoftmaxScale, YarnMscaleAllDimSquared) {
    ModelConfig c;
    EXPECT_FLOAT_EQ(mla_softmax_scale(c, 192), float(1.0 / std::sqrt(192.0)));
    c.rope_scaling.type = "yarn";
    c.rope_scaling.factor = 40.0;
    c.rope_scaling.mscale_all_dim = 1.0;
    const double m = 0.1 * std::log(40.0) + 1.0;
    EXPECT_FLOAT_EQ(mla_softmax_scale(c, 192), float(m * m / std::sqrt(192.0)));
    c.rope_scaling.mscale_all_dim = 0.0;  // absent: no correction
    EXPECT_FLOAT_EQ(mla_softmax_scale(c, 192), float(1.0 / std::sqrt(192.0)));
}

}  // namespace
}  // namespace mst
