#include "model/linear.h"

namespace mst {

void run_linear(Backend &backend, const Linear &w, const float *x, float *y, int64_t n_tokens) {
    if (w.is_block_fp8()) {
        backend.matmul_block_fp8(w.weight, w.scale_inv, w.block.rows, w.block.cols, x, y, n_tokens);
    } else {
        backend.matmul(w.weight, x, y, n_tokens);
    }
    if (w.bias.empty()) return;
    const int64_t out = int64_t(w.bias.size());
    for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t r = 0; r < out; ++r) y[t * out + r] += w.bias[size_t(r)];
}

void swiglu_linear(Backend &backend, const SwigluLinear &w, const float *h, int64_t n_tokens, float *out) {
    const int64_t inter = w.gate.weight.rows;
    std::vector<float> gate(size_t(n_tokens * inter)), up(size_t(n_tokens * inter));
    run_linear(backend, w.gate, h, gate.data(), n_tokens);
    run_linear(backend, w.up, h, up.data(), n_tokens);
    backend.silu_mul(gate.data(), up.data(), gate.data(), n_tokens * inter);
    run_linear(backend, w.down, gate.data(), out, n_tokens);
}

}  // namespace mst
