#include "backends/cpu/matmul.h"
#include "backends/cpu/parallel_for.h"

#include <algorithm>

#include "backends/cpu/matmul_kquant.h"
#include "backends/cpu/matmul_quant.h"
#include "core/error.h"

namespace mst {
namespace {

// Weights of one row block: small enough to stay in L2 while every token tile of a token
// block passes over it, so prefill reads the weights from memory once per token block.
constexpr int64_t kRowBlockBytes = 64 * 1024;
// Activations of one token block, likewise kept in L2 across the rows of a block.
constexpr int64_t kTokenBlockBytes = 256 * 1024;
// Row blocks per thread at least, so that uneven blocks still balance.
constexpr int64_t kBlocksPerThread = 8;
// Below this many multiply-adds a parallel region costs more than it saves.
constexpr int64_t kMinParallelMacs = 64 * 1024;

// Rows of activations quantized per thread at least before quantizing in parallel.
constexpr int64_t kMinParallelTokens = 8;

}  // namespace

RowBlocking row_blocking(int64_t rows, int64_t cols, int64_t n_tokens, int64_t row_bytes, int n_threads) {
    const int64_t threads = rows * cols * n_tokens >= kMinParallelMacs ? std::max(1, n_threads) : 1;
    const int64_t rows_per_block = std::clamp(
        std::min(kRowBlockBytes / row_bytes, (rows + threads * kBlocksPerThread - 1) / (threads * kBlocksPerThread)),
        int64_t(1), rows);
    return {threads, rows_per_block, (rows + rows_per_block - 1) / rows_per_block};
}

int activation_quant_threads(int64_t n_tokens, int n_threads) {
    return int(std::clamp<int64_t>(n_tokens / kMinParallelTokens, 1, std::max(1, n_threads)));
}

CpuKernels::DotRowsFn float_dot_rows_kernel(const CpuKernels &k, DType t) {
    switch (t) {
        case DType::F32: return k.dot_rows_f32;
        case DType::F16: return k.dot_rows_f16;
        case DType::BF16: return k.dot_rows_bf16;
        default:
            fail(MST_ERR_UNSUPPORTED, "matmul: weight dtype {} is not supported (F32, F16, BF16)", dtype_name(t));
    }
}

void cpu_matmul(const CpuKernels &kernels, int n_threads, const WeightView &w, const float *x, float *y,
                int64_t n_tokens) {
    if (dtype_is_kquant(w.dtype)) return cpu_matmul_kquant(kquant_kernels_for(kernels), n_threads, w, x, y, n_tokens);
    if (dtype_is_quantized(w.dtype))
        return cpu_matmul_quant(kernels, n_threads, w, x, y, n_tokens);
    const CpuKernels::DotRowsFn kernel = float_dot_rows_kernel(kernels, w.dtype);
    const int64_t rows = w.rows, cols = w.cols;
    if (rows == 0 || n_tokens == 0) return;
    if (cols == 0) {
        std::fill(y, y + rows * n_tokens, 0.0f);
        return;
    }

    const int64_t row_bytes = cols * int64_t(dtype_size(w.dtype));
    const int64_t tile = kernels.max_tokens;
    const auto [threads, rows_per_block, n_blocks] = row_blocking(rows, cols, n_tokens, row_bytes, n_threads);
    const int64_t tokens_per_block =
        n_tokens <= tile ? n_tokens : std::max(tile, kTokenBlockBytes / (cols * int64_t(sizeof(float))) / tile * tile);
    const auto *wbytes = static_cast<const unsigned char *>(w.data);

    // A static split: handing row blocks out dynamically (so that a descheduled worker
    // holds up less) measured slower on the shared 2-vCPU machine (bench/README.md
    // "Decode profile"). A row block stays in L2 while every token block passes over it.
    parallel_for(n_blocks, int(threads), [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
            const int64_t r0 = b * rows_per_block;
            const int64_t nr = std::min(rows_per_block, rows - r0);
            for (int64_t t0 = 0; t0 < n_tokens; t0 += tokens_per_block) {
                const int64_t t1 = std::min(n_tokens, t0 + tokens_per_block);
                for (int64_t t = t0; t < t1; t += tile)
                    kernel(wbytes + r0 * row_bytes, nr, cols, x + t * cols, cols, int(std::min(tile, t1 - t)),
                           y + t * rows + r0, rows);
            }
        }
    });
}

}  // namespace mst
