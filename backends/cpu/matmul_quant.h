// The CPU matmul over block-quantized weights (Q8, Q4, the GGML legacy types): quantize
// the activations once, then the same row blocking and threading as the float matmul
// around the quantized kernels. cpu_matmul dispatches here by the weight's dtype.
#pragma once

#include <cstdint>

#include "backends/backend.h"
#include "backends/cpu/quant_kernels.h"

namespace mst {

// y[t][r] = sum_c w[r][c] * x[t][c] for t < n_tokens, w of a block-quantized dtype (rows
// of dtype_row_bytes(w.dtype, w.cols) bytes), with the quantized kernels that go with the
// float table `float_kernels` (quant_kernels_for). The caller has checked the arguments
// (check_matmul_params, backend.h); another dtype throws MST_ERR_UNSUPPORTED.
void cpu_matmul_quant(const CpuKernels &float_kernels, int n_threads, const WeightView &w, const float *x, float *y,
                      int64_t n_tokens);

// The row kernel for Q8 or Q4 weights; another dtype throws MST_ERR_UNSUPPORTED.
QuantKernels::DotRowsFn quant_dot_rows_kernel(const QuantKernels &kernels, DType t);

}  // namespace mst
