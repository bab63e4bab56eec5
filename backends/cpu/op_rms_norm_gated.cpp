// The gated RMSNorm that closes a Gated DeltaNet layer: normalise each head's output,
// scale by the weight, multiply by silu of the gate projection.
#include <cmath>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/parallel_for.h"

namespace mst {

void CpuBackend::rms_norm_gated(const float *x, const float *gate, const WeightView &w, float eps, float *y,
                                int64_t n_rows, int64_t dim) {
    check_rms_norm_gated_params(x, gate, w, y, n_rows, dim);
    if (n_rows == 0) return;

    std::vector<float> scale(static_cast<size_t>(dim));
    convert_to_f32(w.dtype, w.data, scale.data(), scale.size());

    const int threads = threads_for(n_rows * dim);
    parallel_for(n_rows, threads, [&](int64_t r_begin, int64_t r_end) {
        for (int64_t r = r_begin; r < r_end; ++r) {
            const float *xr = x + r * dim;
            const float *gr = gate + r * dim;
            float *yr = y + r * dim;
            double sum = 0.0;
            for (int64_t i = 0; i < dim; ++i) sum += double(xr[i]) * double(xr[i]);
            const float inv_rms = float(1.0 / std::sqrt(sum / double(dim) + double(eps)));
            // Elementwise after the sum, so y may equal x. The reference's order: the normalised
            // value times the weight, then times silu(gate).
            for (int64_t i = 0; i < dim; ++i) {
                const float g = gr[i];
                yr[i] = scale[size_t(i)] * (xr[i] * inv_rms) * (g / (1.0f + std::exp(-g)));
            }
        }
    });
}

}  // namespace mst
