// The CPU matmul over GGML K-quant weights (Q2_K .. Q6_K): quantize the activations once
// to int8 super-blocks, then decode each weight super-block once per token tile and take
// its integer dot products with every token of the tile. cpu_matmul dispatches here by the
// weight's dtype.
#pragma once

#include <cstdint>

#include "backends/backend.h"
#include "backends/cpu/kquant_kernels.h"

namespace mst {

// y[t][r] = sum_c w[r][c] * x[t][c] for t < n_tokens, w of a K-quant dtype (rows of
// dtype_row_bytes(w.dtype, w.cols) bytes). The caller has checked the arguments
// (check_matmul_params, backend.h); another dtype throws MST_ERR_UNSUPPORTED.
void cpu_matmul_kquant(const KQuantKernels &kernels, int n_threads, const WeightView &w, const float *x, float *y,
                       int64_t n_tokens);

}  // namespace mst
