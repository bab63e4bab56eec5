// Sigmoid gating: the output gate of gated attention (one gate per element) and the
// gate of a shared expert (one per token).
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/parallel_for.h"

namespace mst {

void CpuBackend::sigmoid_mul(float *x, const float *gate, int64_t n_rows, int64_t dim, int64_t gate_dim) {
    check_sigmoid_mul_params(x, gate, n_rows, dim, gate_dim);
    if (n_rows == 0) return;

    const int64_t span = dim / gate_dim;  // elements sharing one gate
    const int threads = threads_for(n_rows * dim);
    parallel_for(n_rows, threads, [&](int64_t r_begin, int64_t r_end) {
        for (int64_t r = r_begin; r < r_end; ++r) {
            float *xr = x + r * dim;
            const float *gr = gate + r * gate_dim;
            for (int64_t g = 0; g < gate_dim; ++g) {
                // 1 / (1 + exp(-g)) is 0, not NaN, when exp overflows.
                const float s = 1.0f / (1.0f + std::exp(-gr[g]));
                for (int64_t i = g * span; i < (g + 1) * span; ++i) xr[i] *= s;
            }
        }
    });
}

}  // namespace mst
