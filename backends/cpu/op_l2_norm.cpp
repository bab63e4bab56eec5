// L2 normalisation of rows (the q and k of Gated DeltaNet): light next to the matmuls
// around it, so a plain loop over rows.
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "core/error.h"

namespace mst {

void CpuBackend::l2_norm(float *x, int64_t n_rows, int64_t dim, float eps) {
    if (n_rows < 0 || dim <= 0) fail(MST_ERR_INVALID_ARGUMENT, "l2_norm: bad size (n_rows {}, dim {})", n_rows, dim);
    if (!(eps >= 0.0f)) fail(MST_ERR_INVALID_ARGUMENT, "l2_norm: eps must be >= 0, got {}", eps);
    if (n_rows == 0) return;
    if (x == nullptr) fail(MST_ERR_INVALID_ARGUMENT, "l2_norm: null pointer");

    const int threads = threads_for(n_rows * dim);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t r = 0; r < n_rows; ++r) {
        float *xr = x + r * dim;
        // In double, as rms_norm does: the norm is then exact to its float32 rounding.
        double sum = 0.0;
        for (int64_t i = 0; i < dim; ++i) sum += double(xr[i]) * double(xr[i]);
        const float inv = float(1.0 / std::sqrt(sum + double(eps)));
        for (int64_t i = 0; i < dim; ++i) xr[i] *= inv;
    }
}

}  // namespace mst
