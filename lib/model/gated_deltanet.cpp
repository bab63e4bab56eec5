#include "model/gated_deltanet.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mst {
namespace {

// Upper bound for head counts and sizes, as the config parser's: far above any real model.
constexpr int64_t kMaxSize = int64_t(1) << 24;

// A linear_* size from the config, with the reference configuration's default when absent.
int64_t linear_field(const ModelConfig &c, const char *key, int64_t fallback) {
    const auto it = c.raw.find(key);
    if (it == c.raw.end() || it->is_null()) return fallback;
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > kMaxSize)
        fail(MST_ERR_BAD_FORMAT, "config.json field '{}' of {} must be an integer in [1, {}], not {}", key,
             c.model_type, kMaxSize, it->dump());
    return it->get<int64_t>();
}

// The row order that turns Qwen3-Next's fused projections into the separate layout.
// in_proj_qkvz groups its rows per key head g: [q_g (dk) | k_g (dk) | v of the r value
// heads of g (r*dv) | z of them (r*dv)], r = n_v_heads / n_k_heads; in_proj_ba groups
// [b of the r heads | a of them]. Separate layout: all q, all k, all v, then all z.
std::vector<int64_t> qkvz_row_order(const GatedDeltaNetShape &s) {
    const int64_t r = s.n_v_heads / s.n_k_heads, dk = s.k_dim, rv = r * s.v_dim;
    const int64_t group = 2 * dk + 2 * rv;
    std::vector<int64_t> order;
    order.reserve(size_t(s.n_k_heads * group));
    const int64_t offsets[4] = {0, dk, 2 * dk, 2 * dk + rv};  // q, k, v, z within a group
    const int64_t lengths[4] = {dk, dk, rv, rv};
    for (int part = 0; part < 4; ++part)
        for (int64_t g = 0; g < s.n_k_heads; ++g)
            for (int64_t i = 0; i < lengths[part]; ++i) order.push_back(g * group + offsets[part] + i);
    return order;
}

std::vector<int64_t> ba_row_order(const GatedDeltaNetShape &s) {
    const int64_t r = s.n_v_heads / s.n_k_heads;
    std::vector<int64_t> order;
    order.reserve(size_t(2 * s.n_v_heads));
    for (int part = 0; part < 2; ++part)
        for (int64_t g = 0; g < s.n_k_heads; ++g)
            for (int64_t i = 0; i < r; ++i) order.push_back(g * 2 * r + part * r + i);
    return order;
}

// Rows [first, first + rows) of a loaded matrix, as a view into the same memory.
WeightView row_range(const WeightView &w, int64_t first, int64_t rows) {
    const size_t row_bytes = size_t(dtype_row_bytes(w.dtype, w.cols));
    WeightView v{w.dtype, static_cast<const uint8_t *>(w.data) + size_t(first) * row_bytes, rows, w.cols};
    v.stable = w.stable;  // its own pointer and size, so its own device copy
    return v;
}

// torch.nn.functional.softplus with its default threshold: linear above 20.
float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

}  // namespace

GatedDeltaNetShape gated_deltanet_shape(const ModelConfig &c) {
    GatedDeltaNetShape s;
    s.n_k_heads = linear_field(c, "linear_num_key_heads", 16);
    s.n_v_heads = linear_field(c, "linear_num_value_heads", 32);
    s.k_dim = linear_field(c, "linear_key_head_dim", 128);
    s.v_dim = linear_field(c, "linear_value_head_dim", 128);
    s.conv_kernel = linear_field(c, "linear_conv_kernel_dim", 4);
    s.norm_eps = float(c.rms_norm_eps);
    if (s.n_v_heads % s.n_k_heads != 0)
        fail(MST_ERR_BAD_FORMAT,
             "config.json of {}: linear_num_value_heads {} is not a multiple of linear_num_key_heads {}", c.model_type,
             s.n_v_heads, s.n_k_heads);
    return s;
}

GatedDeltaNetWeights load_gated_deltanet(ResidentWeights &weights, const std::string &p, const GatedDeltaNetShape &s,
                                         int64_t H, DeltaNetLayout layout) {
    GatedDeltaNetWeights w;
    const int64_t conv_dim = s.conv_dim(), value_dim = s.value_dim(), nv = s.n_v_heads;
    if (layout == DeltaNetLayout::Separate) {
        w.qkv = weights.load(p + "in_proj_qkv.weight", {conv_dim, H});
        w.z = weights.load(p + "in_proj_z.weight", {value_dim, H});
        w.b = weights.load(p + "in_proj_b.weight", {nv, H});
        w.a = weights.load(p + "in_proj_a.weight", {nv, H});
    } else {
        const WeightView qkvz =
            weights.load_rows(p + "in_proj_qkvz.weight", {conv_dim + value_dim, H}, qkvz_row_order(s));
        w.qkv = row_range(qkvz, 0, conv_dim);
        w.z = row_range(qkvz, conv_dim, value_dim);
        const WeightView ba = weights.load_rows(p + "in_proj_ba.weight", {2 * nv, H}, ba_row_order(s));
        w.b = row_range(ba, 0, nv);
        w.a = row_range(ba, nv, nv);
    }
    // Stored as a grouped Conv1d, [channels][1][kernel]: one row of taps per channel.
    w.conv = weights.load(p + "conv1d.weight", {conv_dim, 1, s.conv_kernel});
    w.conv.rows = conv_dim;
    w.conv.cols = s.conv_kernel;
    w.norm = weights.load(p + "norm.weight", {s.v_dim});
    w.out = weights.load(p + "out_proj.weight", {H, value_dim});
    w.a_log = weights.load_f32(p + "A_log", {nv});
    w.dt_bias = weights.load_f32(p + "dt_bias", {nv});
    return w;
}

void gated_deltanet(Backend &backend, const GatedDeltaNetWeights &w, const GatedDeltaNetShape &s, const float *h,
                    int64_t n, const float *conv_in, float *conv_out, const float *recurrent_in, float *recurrent_out,
                    float *out) {
    const int64_t conv_dim = s.conv_dim(), key_dim = s.key_dim(), value_dim = s.value_dim(), nv = s.n_v_heads;
    std::vector<float> mixed(size_t(n * conv_dim)), conv(size_t(n * conv_dim)), z(size_t(n * value_dim));
    std::vector<float> b(size_t(n * nv)), a(size_t(n * nv));
    {
        // One input: a backend may run them as one product (one parallel region on the CPU).
        const WeightView ws[] = {w.qkv, w.z, w.b, w.a};
        float *const ys[] = {mixed.data(), z.data(), b.data(), a.data()};
        backend.matmuls_one_input(ws, ys, h, n);
    }
    backend.causal_conv1d(mixed.data(), w.conv, conv_in, conv_out, conv.data(), n, conv_dim, true);

    // Split the convolved channels into contiguous q, k and v.
    std::vector<float> q(size_t(n * key_dim)), k(size_t(n * key_dim)), v(size_t(n * value_dim));
    for (int64_t t = 0; t < n; ++t) {
        const float *row = conv.data() + t * conv_dim;
        std::copy(row, row + key_dim, q.data() + t * key_dim);
        std::copy(row + key_dim, row + 2 * key_dim, k.data() + t * key_dim);
        std::copy(row + 2 * key_dim, row + conv_dim, v.data() + t * value_dim);
    }
    // The reference's fixed 1e-6, not the config's rms_norm_eps.
    backend.l2_norm(q.data(), n * s.n_k_heads, s.k_dim, 1e-6f);
    backend.l2_norm(k.data(), n * s.n_k_heads, s.k_dim, 1e-6f);

    // beta = sigmoid(b) is how much a token rewrites the state; g = -exp(A_log) *
    // softplus(a + dt_bias) is the log of how much of the state survives it.
    std::vector<float> g(size_t(n * nv)), beta(size_t(n * nv));
    for (int64_t t = 0; t < n; ++t)
        for (int64_t hd = 0; hd < nv; ++hd) {
            const size_t i = size_t(t * nv + hd);
            beta[i] = 1.0f / (1.0f + std::exp(-b[i]));
            g[i] = -std::exp(w.a_log[size_t(hd)]) * softplus(a[i] + w.dt_bias[size_t(hd)]);
        }

    Backend::DeltaRuleShape rule;
    rule.n_tokens = n;
    rule.n_heads = nv;
    rule.n_k_heads = s.n_k_heads;
    rule.k_dim = s.k_dim;
    rule.v_dim = s.v_dim;
    rule.scale = 1.0f / std::sqrt(float(s.k_dim));
    std::vector<float> core(size_t(n * value_dim));
    backend.gated_delta_rule(q.data(), k.data(), v.data(), g.data(), beta.data(), recurrent_in, recurrent_out,
                             core.data(), rule);
    backend.rms_norm_gated(core.data(), z.data(), w.norm, s.norm_eps, core.data(), n * nv, s.v_dim);
    backend.matmul(w.out, core.data(), out, n);
}

}  // namespace mst
