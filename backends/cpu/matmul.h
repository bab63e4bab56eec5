// The CPU matmul driver: cache blocking and threading around the per-ISA row kernels.
#pragma once

#include <cstdint>

#include "backends/backend.h"
#include "backends/cpu/cpu_kernels.h"

namespace mst {

// y[t][r] = sum_c w[r][c] * x[t][c] for t < n_tokens (see Backend::matmul) on up to
// n_threads threads (parallel_for.h). x and y must not overlap. Q8 and Q4 weights go to
// cpu_matmul_quant (matmul_quant.h). The caller has checked the arguments
// (check_matmul_params, backend.h); a weight dtype other than F32, F16, BF16, Q8 and Q4
// throws MST_ERR_UNSUPPORTED.
void cpu_matmul(const CpuKernels &kernels, int n_threads, const WeightView &w, const float *x, float *y,
                int64_t n_tokens);

// The row kernel for F32, F16 or BF16 weights; another dtype throws MST_ERR_UNSUPPORTED.
CpuKernels::DotRowsFn float_dot_rows_kernel(const CpuKernels &kernels, DType t);

// How every CPU matmul driver (this one, matmul_quant, matmul_kquant) cuts a weight's rows
// among threads: blocks small enough to stay in L2 while every token tile passes over
// them, several per thread so uneven blocks still balance, one thread for small products.
struct RowBlocking {
    int64_t threads;         // threads to run on (1: serial)
    int64_t rows_per_block;
    int64_t n_blocks;
};
RowBlocking row_blocking(int64_t rows, int64_t cols, int64_t n_tokens, int64_t row_bytes, int n_threads);

// Threads for quantizing the activations of n_tokens rows: one per 8 rows at least.
int activation_quant_threads(int64_t n_tokens, int n_threads);

}  // namespace mst
