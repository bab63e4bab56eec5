// y = W^T x. Threads own disjoint column ranges of y, so each weight element is read
// once per call and no partial sums need merging; within a range the rows of W are
// widened to float32 once and added into every token's output.
#include <algorithm>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/parallel_for.h"

namespace mst {

void CpuBackend::matmul_transposed(const WeightView &w, const float *x, float *y, int64_t n_tokens) {
    check_matmul_transposed_params(w, x, y, n_tokens);
    const int64_t rows = w.rows, cols = w.cols;
    if (cols == 0 || n_tokens == 0) return;
    std::fill(y, y + n_tokens * cols, 0.0f);
    if (rows == 0) return;

    const int threads = threads_for(rows * cols * n_tokens);
    // Ranges of whole cache lines, at least 64 columns so a row segment is worth a call.
    const int64_t per_thread = (cols + threads - 1) / threads;
    const int64_t chunk = std::max<int64_t>(64, (per_thread + 15) / 16 * 16);
    const int64_t n_chunks = (cols + chunk - 1) / chunk;
    const size_t elem = dtype_size(w.dtype);
    const auto *wbytes = static_cast<const unsigned char *>(w.data);
    const CpuKernels &k = kernels_;

    parallel_for(n_chunks, threads, [&](int64_t b_begin, int64_t b_end) {
        std::vector<float> row(static_cast<size_t>(chunk));
        for (int64_t b = b_begin; b < b_end; ++b) {
            const int64_t c0 = b * chunk, n = std::min(chunk, cols - c0);
            for (int64_t r = 0; r < rows; ++r) {
                convert_to_f32(w.dtype, wbytes + (size_t(r) * size_t(cols) + size_t(c0)) * elem, row.data(), size_t(n));
                for (int64_t t = 0; t < n_tokens; ++t) k.axpy(n, x[t * rows + r], row.data(), y + t * cols + c0);
            }
        }
    });
}

}  // namespace mst
