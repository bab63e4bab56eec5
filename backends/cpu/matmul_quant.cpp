#include "backends/cpu/matmul_quant.h"
#include "backends/cpu/matmul.h"
#include "backends/cpu/parallel_for.h"

#include <algorithm>
#include <vector>

#include "backends/cpu/quant_kernels_ggml_legacy.h"
#include "core/error.h"
#include "core/quant.h"

namespace mst {
namespace {

// Rows a thread's share of a one-token product is a multiple of: the one-token tile of the
// VNNI kernels (8 rows), a multiple of the others' (AVX2 2, AVX-512 madd 4).
constexpr int64_t kDecodeRowUnit = 8;

// The kernel for the weight's dtype and the most tokens it takes per call.
struct SelectedKernel {
    QuantKernels::DotRowsFn fn;
    int max_tokens;
};

SelectedKernel select_kernel(const CpuKernels &float_kernels, const QuantKernels &k, DType t) {
    if (t == DType::Q8 || t == DType::Q4) return {quant_dot_rows_kernel(k, t), k.max_tokens};
    const GgmlLegacyKernels &legacy = ggml_legacy_kernels_for(float_kernels);
    if (const QuantKernels::DotRowsFn fn = ggml_legacy_kernel(legacy, t)) return {fn, legacy.max_tokens};
    fail(MST_ERR_UNSUPPORTED, "quantized matmul: weight dtype {} is not a block-quantized type", dtype_name(t));
}

}  // namespace

QuantKernels::DotRowsFn quant_dot_rows_kernel(const QuantKernels &k, DType t) {
    switch (t) {
        case DType::Q8: return k.dot_rows_q8;
        case DType::Q4: return k.dot_rows_q4;
        default: fail(MST_ERR_UNSUPPORTED, "quantized matmul: weight dtype {} is not Q8 or Q4", dtype_name(t));
    }
}

void cpu_matmul_quant(const CpuKernels &float_kernels, int n_threads, const WeightView &w, const float *x, float *y,
                      int64_t n_tokens) {
    const QuantKernels &kernels = quant_kernels_for(float_kernels, w.dtype);
    const SelectedKernel kernel = select_kernel(float_kernels, kernels, w.dtype);
    const int64_t rows = w.rows, cols = w.cols;
    if (rows == 0 || n_tokens == 0) return;
    if (cols == 0) {
        std::fill(y, y + rows * n_tokens, 0.0f);
        return;
    }

    const int64_t n_blocks = (cols + kQuantBlock - 1) / kQuantBlock;
    std::vector<QuantizedActivation> xq(size_t(n_tokens * n_blocks));
    const int quant_threads = activation_quant_threads(n_tokens, n_threads);
    parallel_for(n_tokens, quant_threads, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) kernels.quantize_activation(x + t * cols, cols, xq.data() + t * n_blocks);
    });

    const int64_t row_bytes = int64_t(dtype_row_bytes(w.dtype, cols));
    const int64_t tile = std::min(kernels.max_tokens, kernel.max_tokens);
    const auto [threads, rows_per_block, n_row_blocks] = row_blocking(rows, cols, n_tokens, row_bytes, n_threads);
    const auto *wbytes = static_cast<const unsigned char *>(w.data);

    if (n_tokens <= tile) {
        // One token tile (decode): there is no second pass over a row block to keep it in L2
        // for, so each thread takes one contiguous range of whole 8-row tiles in one call;
        // the kernels prefetch a tile ahead within a call, so row blocks of 64 KiB cut the
        // prefetch off at every block's end and ran a block's last rows one by one.
        parallel_for((rows + kDecodeRowUnit - 1) / kDecodeRowUnit, int(threads), [&](int64_t u0, int64_t u1) {
            const int64_t r0 = u0 * kDecodeRowUnit, r1 = std::min(rows, u1 * kDecodeRowUnit);
            kernel.fn(wbytes + r0 * row_bytes, row_bytes, r1 - r0, n_blocks, xq.data(), n_blocks, int(n_tokens),
                      y + r0, rows);
        });
        return;
    }
    // A static split, as in matmul.cpp; each row block stays in L2 while every token tile
    // passes over it.
    parallel_for(n_row_blocks, int(threads), [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
            const int64_t r0 = b * rows_per_block;
            const int64_t nr = std::min(rows_per_block, rows - r0);
            for (int64_t t = 0; t < n_tokens; t += tile)
                kernel.fn(wbytes + r0 * row_bytes, row_bytes, nr, n_blocks, xq.data() + t * n_blocks, n_blocks,
                          int(std::min(tile, n_tokens - t)), y + t * rows + r0, rows);
        }
    });
}

}  // namespace mst
