// The CPU matmul's inner loops over the GGML legacy block types (core/ggml_legacy_quants.h):
// Q4_0, Q5_0, Q5_1, IQ4_NL, IQ4_XS and MXFP4, one table per instruction set. They share
// moestream's quantized-matmul frame (matmul_quant.cpp): activations quantized once per
// matmul to 16-bit blocks of 32 (QuantizedActivation), then, per 32-element sub-block of a
// weight row, one integer dot product of its codes (|code| <= 127, so 32 products with
// 16-bit activations stay below 2^31) scaled in float by the two scales, plus the
// sub-block's minimum times the activations' sum for Q5_1. The weight stays in its
// blocks: nothing is expanded to floats.
#pragma once

#include "backends/cpu/cpu_kernels.h"
#include "backends/cpu/quant_kernels.h"
#include "core/dtype.h"

namespace mst {

struct GgmlLegacyKernels {
    // As QuantKernels::DotRowsFn; n_blocks counts 32-element sub-blocks (8 per IQ4_XS block).
    QuantKernels::DotRowsFn q4_0 = nullptr, q5_0 = nullptr, q5_1 = nullptr, iq4_nl = nullptr, iq4_xs = nullptr,
                            mxfp4 = nullptr;
    int max_tokens = 1;
};

const GgmlLegacyKernels &ggml_legacy_kernels_scalar();
#if defined(__x86_64__)
const GgmlLegacyKernels &ggml_legacy_kernels_avx2();
const GgmlLegacyKernels &ggml_legacy_kernels_avx512();
#endif

// The table matching a float kernel table, as quant_kernels_for picks: AVX-512 for the
// AVX-512 table, AVX2 for the AVX2 one, else scalar.
const GgmlLegacyKernels &ggml_legacy_kernels_for(const CpuKernels &kernels);

// The table's kernel for one of the six types; null for any other dtype.
QuantKernels::DotRowsFn ggml_legacy_kernel(const GgmlLegacyKernels &kernels, DType t);

}  // namespace mst
