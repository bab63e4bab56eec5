#include "backends/cpu/matmul_kquant.h"
#include "backends/cpu/matmul.h"
#include "backends/cpu/parallel_for.h"

#include <algorithm>
#include <vector>

#include "core/error.h"

namespace mst {
namespace {

// One weight row against one tile of tokens: each super-block decoded once for the tile.
void row_tile(const KQuantKernels &k, DType t, const unsigned char *row, int64_t block_bytes, int64_t n_blocks,
              const BlockQ8K *x, int n_tok, float *y, int64_t ldy) {
    float acc[64] = {};
    KQuantCodes codes;
    for (int64_t b = 0; b < n_blocks; ++b) {
        k.unpack(t, row + b * block_bytes, codes);
        k.dot(codes, x + b, n_blocks, n_tok, acc);
    }
    for (int j = 0; j < n_tok; ++j) y[j * ldy] = acc[j];
}

}  // namespace

void cpu_matmul_kquant(const KQuantKernels &kernels, int n_threads, const WeightView &w, const float *x, float *y,
                       int64_t n_tokens) {
    if (!dtype_is_kquant(w.dtype))
        fail(MST_ERR_UNSUPPORTED, "K-quant matmul: weight dtype {} is not Q2_K .. Q6_K", dtype_name(w.dtype));
    const int64_t rows = w.rows, cols = w.cols;
    if (rows == 0 || n_tokens == 0) return;
    if (cols == 0) {
        std::fill(y, y + rows * n_tokens, 0.0f);
        return;
    }

    const int64_t n_blocks = (cols + kSuperBlock - 1) / kSuperBlock;
    std::vector<BlockQ8K> xq(size_t(n_tokens * n_blocks));
    const int quant_threads = activation_quant_threads(n_tokens, n_threads);
    parallel_for(n_tokens, quant_threads, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) kernels.quantize_activation(x + t * cols, cols, xq.data() + t * n_blocks);
    });

    const int64_t block_bytes = int64_t(dtype_size(w.dtype));
    const int64_t row_bytes = n_blocks * block_bytes;
    const int64_t tile = std::min(kernels.max_tokens, 64);
    const auto [threads, rows_per_block, n_row_blocks] = row_blocking(rows, cols, n_tokens, row_bytes, n_threads);
    const auto *wbytes = static_cast<const unsigned char *>(w.data);

    // A static split, as in matmul_quant.cpp; each row block stays in L2 while every token
    // tile passes over it.
    parallel_for(n_row_blocks, int(threads), [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
            const int64_t r0 = b * rows_per_block, r1 = std::min(rows, r0 + rows_per_block);
            for (int64_t t = 0; t < n_tokens; t += tile)
                for (int64_t r = r0; r < r1; ++r)
                    row_tile(kernels, w.dtype, wbytes + r * row_bytes, block_bytes, n_blocks, xq.data() + t * n_blocks,
                             int(std::min(tile, n_tokens - t)), y + t * rows + r, rows);
        }
    });
}

}  // namespace mst
