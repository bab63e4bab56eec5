// The innermost loops of the CPU matmul over GGML K-quant weights (core/ggml_kquants.h),
// one table per instruction set. A weight super-block is decoded to integer codes and
// scales in a small stack buffer (KQuantCodes, never a float copy of the weight) and meets
// each token's activation super-block in integer dot products of 16 weights, scaled by the
// sub-block scales in integers and by the super-scales in float. Activations are quantized
// once per matmul to int8 super-blocks with the sums of each 16 (BlockQ8K), as GGML's Q8_K:
// the minimum term sum_i m * x_i of a sub-block is then m * bsum.
#pragma once

#include <cstdint>

#include "backends/cpu/cpu_kernels.h"
#include "core/dtype.h"
#include "core/ggml_kquants.h"

namespace mst {

// 256 activations: x[i] ~= d * q[i], |q[i]| <= 127; bsums[g] = sum of q[16 g .. 16 g + 15].
struct BlockQ8K {
    float d;
    int16_t bsums[16];
    alignas(32) int8_t q[256];
};

struct KQuantKernels {
    // Quantize `cols` floats of x into ceil(cols / 256) blocks (the last padded with zeros).
    void (*quantize_activation)(const float *x, int64_t cols, BlockQ8K *out) = nullptr;
    // Decode one weight super-block of type t.
    void (*unpack)(DType t, const void *block, KQuantCodes &out) = nullptr;
    // acc[j] += dot(w, x[j * ldx]) for j < n_tok: the decoded super-block against each
    // token's activation super-block.
    void (*dot)(const KQuantCodes &w, const BlockQ8K *x, int64_t ldx, int n_tok, float *acc) = nullptr;
    // Tokens one decoded super-block meets before the next is decoded (n_tok's bound).
    int max_tokens = 1;
};

const KQuantKernels &kquant_kernels_scalar();
#if defined(__x86_64__)
const KQuantKernels &kquant_kernels_avx2();
const KQuantKernels &kquant_kernels_avx512();
#endif

// The table that matches a float kernel table (AVX-512, AVX2, else scalar), so that
// MST_CPU_ISA=scalar forces the scalar K-quant kernels too.
const KQuantKernels &kquant_kernels_for(const CpuKernels &kernels);

// The scalar activation quantizer, shared by every table (once per matmul, not hot).
void quantize_activation_q8k_scalar(const float *x, int64_t cols, BlockQ8K *out);

// One super-block's dot product from its integer sums: isum = sum_g scale[g] * (codes .
// q)_g and msum = sum_g min[g] * bsums[g]. The symmetric types (offset != 0) share d and
// dmin, so their difference is taken in integers first: in float, two large nearly equal
// terms would cancel most of the result's bits. Not inline: the SIMD files, compiled for
// their instruction set, must not keep a copy of a header function (quant_kernels_avx2.cpp).
float kquant_combine(const KQuantCodes &w, float xd, int32_t isum, int32_t msum);

}  // namespace mst
