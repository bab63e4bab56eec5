// L2 normalisation of rows (the q and k of Gated DeltaNet): light next to the matmuls
// around it, so a plain loop over rows.
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/parallel_for.h"

namespace mst {

void CpuBackend::l2_norm(float *x, int64_t n_rows, int64_t dim, float eps) {
    check_l2_norm_params(x, n_rows, dim, eps);
    if (n_rows == 0) return;

    const int threads = threads_for(n_rows * dim);
    parallel_for(n_rows, threads, [&](int64_t r_begin, int64_t r_end) {
        for (int64_t r = r_begin; r < r_end; ++r) {
            float *xr = x + r * dim;
            // In double, as rms_norm does: the norm is then exact to its float32 rounding.
            double sum = 0.0;
            for (int64_t i = 0; i < dim; ++i) sum += double(xr[i]) * double(xr[i]);
            const float inv = float(1.0 / std::sqrt(sum + double(eps)));
            for (int64_t i = 0; i < dim; ++i) xr[i] *= inv;
        }
    });
}

}  // namespace mst
