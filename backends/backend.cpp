// Default implementations of the Backend ops that are compositions of other ops. The
// argument checks every backend shares are in op_checks.cpp.
#include <algorithm>
#include <vector>

#include "backends/backend.h"

namespace mst {

void Backend::routed_swiglu(const float *h, float *out, int64_t n_tokens, int64_t hidden,
                            const SwigluExpertUse *experts, size_t n_experts) {
    check_routed_swiglu_params(h, out, n_tokens, hidden, experts, n_experts);
    std::vector<float> x, gate, up, y;
    for (size_t e = 0; e < n_experts; ++e) {
        const SwigluExpertUse &u = experts[e];
        const int64_t m = u.n, inter = u.gate.rows;
        if (m == 0) continue;
        x.resize(size_t(m * hidden));
        for (int64_t i = 0; i < m; ++i) std::copy_n(h + u.tokens[i] * hidden, hidden, x.data() + i * hidden);
        gate.resize(size_t(m * inter));
        up.resize(size_t(m * inter));
        y.resize(size_t(m * hidden));
        matmul(u.gate, x.data(), gate.data(), m);
        matmul(u.up, x.data(), up.data(), m);
        silu_mul(gate.data(), up.data(), gate.data(), m * inter);
        matmul(u.down, gate.data(), y.data(), m);
        for (int64_t i = 0; i < m; ++i) add_scaled(out + u.tokens[i] * hidden, u.weights[i], y.data() + i * hidden, hidden);
    }
}

void Backend::add(float *x, const float *y, int64_t n) {
    check_add_params(x, y, n);
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void Backend::matmuls_one_input(std::span<const WeightView> w, std::span<float *const> y, const float *x,
                                int64_t n_tokens) {
    check_matmuls_one_input_params(w, y, x, n_tokens);
    for (size_t i = 0; i < w.size(); ++i) matmul(w[i], x, y[i], n_tokens);
}

void Backend::copy_rows(const float *src, int64_t src_stride, float *dst, int64_t n_rows, int64_t row_len) {
    check_copy_rows_params(src, src_stride, dst, n_rows, row_len);
    for (int64_t r = 0; r < n_rows; ++r) std::copy_n(src + r * src_stride, row_len, dst + r * row_len);
}

}  // namespace mst
