// The innermost loops of the CPU backend, one table per instruction set. The ops in
// cpu_backend.cpp, matmul.cpp and attention.cpp do the blocking and threading and call
// through this table, so each ISA file holds only arithmetic.
#pragma once

#include <cstdint>

#include "backends/cpu/cpu_isa.h"

namespace mst {

struct CpuKernels {
    // The largest max_tokens of any table, for callers' fixed-size arrays.
    static constexpr int kMaxTokensAny = 8;

    // For each row r < n_rows of the row-major weight block w (`cols` elements per row, in
    // the dtype the function is named for) and each token t < n_tok:
    //   y[t * ldy + r] = sum_c w[r][c] * x[t * ldx + c]
    // with float32 accumulation. 1 <= n_tok <= max_tokens. Each weight element is loaded
    // once and used for all n_tok tokens.
    using DotRowsFn = void (*)(const void *w, int64_t n_rows, int64_t cols, const float *x,
                               int64_t ldx, int n_tok, float *y, int64_t ldy);
    DotRowsFn dot_rows_f32 = nullptr;
    DotRowsFn dot_rows_f16 = nullptr;
    DotRowsFn dot_rows_bf16 = nullptr;
    int max_tokens = 1;

    // y[i] += a * x[i] for i < n.
    void (*axpy)(int64_t n, float a, const float *x, float *y) = nullptr;

    // x[i] = exp(x[i] - shift) for i < n, returning the sum of the results. Used by the
    // softmax, where every x[i] - shift <= 0.
    float (*exp_shift_sum)(float *x, int64_t n, float shift) = nullptr;
};

// The table for `isa`. The caller checks cpu_isa_supported(isa) first.
const CpuKernels &cpu_kernels(CpuIsa isa);

// Per-ISA tables, defined in kernels_<isa>.cpp.
const CpuKernels &cpu_kernels_scalar();
#if defined(__x86_64__)
const CpuKernels &cpu_kernels_avx2();
const CpuKernels &cpu_kernels_avx512();
#endif

}  // namespace mst
