// The CPU matmul over block-quantized weights (Q8, Q4, the GGML legacy types): quantize
// the activations once, then the same row blocking and threading as the float matmul
// around the quantized kernels. cpu_matmul dispatches here by the weight's dtype.
#pragma once

#include <cstdint>
#include <span>

#include "backends/backend.h"
#include "backends/cpu/quant_kernels.h"

namespace mst {

// y[t][r] = sum_c w[r][c] * x[t][c] for t < n_tokens, w of a block-quantized dtype (rows
// of dtype_row_bytes(w.dtype, w.cols) bytes), with the quantized kernels that go with the
// float table `float_kernels` (quant_kernels_for). The caller has checked the arguments
// (check_matmul_params, backend.h); another dtype throws MST_ERR_UNSUPPORTED.
void cpu_matmul_quant(const CpuKernels &float_kernels, int n_threads, const WeightView &w, const float *x, float *y,
                      int64_t n_tokens);

// Whether cpu_matmuls_quant_one_input takes these products: two or more, one token tile,
// weights of one dtype (Q8 or Q4) and one column count, none empty. Otherwise the caller
// runs them one by one.
bool cpu_matmuls_quant_one_input_fits(const CpuKernels &float_kernels, std::span<const WeightView> w,
                                      int64_t n_tokens);
// The one-token products y[i] = w[i] x (an attention's q, k and v) as one: x quantized
// once, their 8-row tiles split over the threads in one parallel region; the results are
// cpu_matmul_quant's weight by weight. Only for products that
// cpu_matmuls_quant_one_input_fits takes; arguments checked by the caller
// (check_matmuls_one_input_params).
void cpu_matmuls_quant_one_input(const CpuKernels &float_kernels, int n_threads, std::span<const WeightView> w,
                                 std::span<float *const> y, const float *x, int64_t n_tokens);

// The row kernel for Q8 or Q4 weights; another dtype throws MST_ERR_UNSUPPORTED.
QuantKernels::DotRowsFn quant_dot_rows_kernel(const QuantKernels &kernels, DType t);

}  // namespace mst
