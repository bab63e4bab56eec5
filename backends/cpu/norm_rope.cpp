// RMSNorm and rotary position embedding. Both are light next to matmul and attention, so
// they are plain loops parallelised over rows / tokens.
#include <cmath>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/parallel_for.h"
#include "core/op_profile.h"

namespace mst {

void CpuBackend::rms_norm(const float *x, const WeightView &w, float weight_offset, float eps, float *y,
                          int64_t n_rows, int64_t dim) {
    check_rms_norm_params(x, w, y, n_rows, dim);
    const OpTimer timer("rms_norm", 0);
    if (n_rows == 0) return;

    std::vector<float> scale(static_cast<size_t>(dim));
    convert_to_f32(w.dtype, w.data, scale.data(), scale.size());
    for (float &s : scale) s += weight_offset;

    const int threads = threads_for(n_rows * dim);
    parallel_for(n_rows, threads, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float *xr = x + r * dim;
            float *yr = y + r * dim;
            // The sum of squares by the SIMD row kernel: a plain loop is one long chain of
            // dependent adds, slower than the rest of the op together. All terms are
            // positive, so float32 accumulation over its many lanes loses little.
            float sum = 0.0f;
            kernels_.dot_rows_f32(xr, 1, dim, xr, 0, 1, &sum, 1);
            const float inv_rms = float(1.0 / std::sqrt(double(sum) / double(dim) + double(eps)));
            // Elementwise after the sum, so y may equal x.
            for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * inv_rms * scale[size_t(i)];
        }
    });
}

void CpuBackend::rope(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t *positions,
                      const RopeParams &p) {
    check_rope_params(x, n_tokens, n_heads, head_dim, positions, p);
    const OpTimer timer("rope", 0);
    if (n_tokens == 0 || n_heads == 0 || p.rotary_dim == 0) return;

    const int64_t half = p.rotary_dim / 2;
    const int threads = threads_for(n_tokens * n_heads * p.rotary_dim);
    parallel_for(n_tokens, threads, [&](int64_t t0, int64_t t1) {
        std::vector<float> cos_t(size_t(half), 0.0f), sin_t(size_t(half), 0.0f);
        for (int64_t t = t0; t < t1; ++t) {
            // The angle is the float32 product, as the reference implementations compute
            // it; its cosine and sine are then taken exactly and rounded once.
            const float pos = float(positions[t]);
            for (int64_t i = 0; i < half; ++i) {
                const double theta = double(pos * p.inv_freq[i]);
                cos_t[size_t(i)] = float(std::cos(theta)) * p.attention_factor;
                sin_t[size_t(i)] = float(std::sin(theta)) * p.attention_factor;
            }
            for (int64_t h = 0; h < n_heads; ++h) {
                float *v = x + (t * n_heads + h) * head_dim;
                // Interleaved rotates pairs (2i, 2i+1); otherwise pairs (i, i + half).
                const int64_t stride = p.interleaved ? 1 : half;
                for (int64_t i = 0; i < half; ++i) {
                    float *a = p.interleaved ? v + 2 * i : v + i;
                    float *b = a + stride;
                    const float x0 = *a, x1 = *b, c = cos_t[size_t(i)], s = sin_t[size_t(i)];
                    *a = x0 * c - x1 * s;
                    *b = x1 * c + x0 * s;
                }
            }
        }
    });
}

}  // namespace mst
