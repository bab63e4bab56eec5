// gpt-oss's clamped SwiGLU (Backend::clamped_swiglu). Elementwise, so a plain loop
// parallelised over rows; it is a small part of an expert next to its two matmuls.
#include <algorithm>
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/parallel_for.h"

namespace mst {

void CpuBackend::clamped_swiglu(const float *gate_up, float *out, int64_t n_rows, int64_t n_inter, float alpha,
                                float limit) {
    check_clamped_swiglu_params(gate_up, out, n_rows, n_inter);
    if (n_rows == 0 || n_inter == 0) return;
    const int threads = threads_for(n_rows * n_inter);
    parallel_for(n_rows, threads, [&](int64_t r_begin, int64_t r_end) {
        for (int64_t r = r_begin; r < r_end; ++r) {
            const float *in = gate_up + r * 2 * n_inter;
            float *o = out + r * n_inter;
            for (int64_t i = 0; i < n_inter; ++i) {
                // std::min / std::clamp keep a NaN input, as torch.clamp does.
                const float g = std::min(in[2 * i], limit);
                const float u = std::clamp(in[2 * i + 1], -limit, limit);
                o[i] = (u + 1.0f) * (g / (1.0f + std::exp(-alpha * g)));
            }
        }
    });
}

}  // namespace mst
