#include "backends/cpu/matmul_quant.h"
#include "backends/cpu/matmul.h"
#include "backends/cpu/parallel_for.h"

#include <algorithm>
#include <span>
#include <vector>

#include "backends/cpu/quant_kernels_ggml_legacy.h"
#include "core/error.h"
#include "core/quant.h"

namespace mst {
namespace {

// Rows a thread's share of a one-token product is a multiple of: the one-token tile of the
// VNNI kernels (8 rows), a multiple of the others' (AVX2 2, AVX-512 madd 4).
constexpr int64_t kDecodeRowUnit = 8;
// Tiles a thread takes at a time from another thread's range once its own is done (the
// stealing split): 128 rows, 278 KiB of a 2048-wide q8 matrix, a few microseconds' work;
// coarse enough that a piece's first tile, which no earlier call prefetched, is rare.
constexpr int64_t kStealTiles = 16;

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

// One one-token product of a run_one_token_tiles call.
struct OneTokenProduct {
    QuantKernels::DotRowsFn fn;
    const unsigned char *w;
    int64_t row_bytes, rows;
    float *y;
};

// One token tile (decode): there is no second pass over a row block to keep it in L2 for,
// so the products' 8-row tiles, numbered product after product, are split into one
// contiguous range per thread, taken in a few long pieces, each product's part of a piece
// in one kernel call: the kernels prefetch a tile ahead within a call, so row blocks of
// 64 KiB cut the prefetch off at every block's end and ran a block's last rows one by one.
// A thread done with its range takes pieces from the back of the other's (the stealing
// split), so a thread that falls behind is not waited for (bench/README.md, "Where the
// decode threads' time goes"). Each row's output comes from its own kernel call's tile
// whatever the split, so the bits do not depend on it. The products read the same
// quantized activations xq [n_tokens][n_blocks]; one parallel region for all of them.
void run_one_token_tiles(std::span<const OneTokenProduct> products, int64_t n_blocks, const QuantizedActivation *xq,
                         int64_t n_tokens, int threads) {
    std::vector<int64_t> first_tile{0};  // prefix sums of tiles per product
    for (const OneTokenProduct &p : products) first_tile.push_back(first_tile.back() + (p.rows + kDecodeRowUnit - 1) / kDecodeRowUnit);
    parallel_for_stealing(first_tile.back(), threads, kStealTiles, [&](int64_t u0, int64_t u1) {
        for (size_t i = 0; i < products.size(); ++i) {
            const int64_t a = std::max(u0, first_tile[i]), b = std::min(u1, first_tile[i + 1]);
            if (a >= b) continue;
            const OneTokenProduct &p = products[i];
            const int64_t r0 = (a - first_tile[i]) * kDecodeRowUnit, r1 = std::min(p.rows, (b - first_tile[i]) * kDecodeRowUnit);
            p.fn(p.w + r0 * p.row_bytes, p.row_bytes, r1 - r0, n_blocks, xq, n_blocks, int(n_tokens), p.y + r0, p.rows);
        }
    });
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
    const QuantizeActivationFn quantize = activation_quantizer(kernels, w.dtype);
    const int quant_threads = activation_quant_threads(n_tokens, n_threads);
    parallel_for(n_tokens, quant_threads, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) quantize(x + t * cols, cols, xq.data() + t * n_blocks);
    });

    const int64_t row_bytes = int64_t(dtype_row_bytes(w.dtype, cols));
    const int64_t tile = std::min(kernels.max_tokens, kernel.max_tokens);
    const auto [threads, rows_per_block, n_row_blocks] = row_blocking(rows, cols, n_tokens, row_bytes, n_threads);
    const auto *wbytes = static_cast<const unsigned char *>(w.data);

    if (n_tokens <= tile) {
        const OneTokenProduct product{kernel.fn, wbytes, row_bytes, rows, y};
        run_one_token_tiles({&product, 1}, n_blocks, xq.data(), n_tokens, int(threads));
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

bool cpu_matmuls_quant_one_input_fits(const CpuKernels &float_kernels, std::span<const WeightView> w,
                                      int64_t n_tokens) {
    if (w.size() < 2 || n_tokens < 1 || (w[0].dtype != DType::Q8 && w[0].dtype != DType::Q4)) return false;
    const QuantKernels &kernels = quant_kernels_for(float_kernels, w[0].dtype);
    // One dtype: one kernel table, so one activation quantization serves every product.
    for (const WeightView &wi : w)
        if (wi.dtype != w[0].dtype || wi.cols != w[0].cols || wi.rows < 1 || wi.cols < 1) return false;
    return n_tokens <= std::min(kernels.max_tokens, select_kernel(float_kernels, kernels, w[0].dtype).max_tokens);
}

void cpu_matmuls_quant_one_input(const CpuKernels &float_kernels, int n_threads, std::span<const WeightView> w,
                                 std::span<float *const> y, const float *x, int64_t n_tokens) {
    const QuantKernels &kernels = quant_kernels_for(float_kernels, w[0].dtype);
    const int64_t cols = w[0].cols;
    std::vector<OneTokenProduct> products;
    int64_t rows = 0;
    for (size_t i = 0; i < w.size(); ++i) {
        const SelectedKernel kernel = select_kernel(float_kernels, kernels, w[i].dtype);
        const int64_t row_bytes = int64_t(dtype_row_bytes(w[i].dtype, cols));
        products.push_back({kernel.fn, static_cast<const unsigned char *>(w[i].data), row_bytes, w[i].rows, y[i]});
        rows += w[i].rows;
    }
    const int64_t n_blocks = (cols + kQuantBlock - 1) / kQuantBlock;
    std::vector<QuantizedActivation> xq(size_t(n_tokens * n_blocks));
    const QuantizeActivationFn quantize = activation_quantizer(kernels, w[0].dtype);
    for (int64_t t = 0; t < n_tokens; ++t) quantize(x + t * cols, cols, xq.data() + t * n_blocks);
    const int threads = int(row_blocking(rows, cols, n_tokens, products[0].row_bytes, n_threads).threads);
    run_one_token_tiles(products, n_blocks, xq.data(), n_tokens, threads);
}

}  // namespace mst
