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

}  // namespace mst
