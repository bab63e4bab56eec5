// The innermost loops of the CPU matmul over block-quantized weights (core/quant.h), one
// table per instruction set. They never expand a weight matrix to floats: the activation
// rows are quantized once per matmul to 16-bit blocks of 32 (QuantizedActivation), and
// each weight block meets each activation block in one integer dot product, scaled by
// the two blocks' scales in float. 16 bits (not 8) keep the activations' rounding error
// (2^-16 of a block's largest value) far below the weights': with 8-bit activations the
// q8 logits error on the reference models was 1.3e-2, most of it from the activations.
#pragma once

#include <cstdint>

#include "backends/cpu/cpu_kernels.h"
#include "core/dtype.h"

namespace mst {

// The tables with int8_activations set (quant_kernels_int8_for) quantize to 8 bits instead
// (a step of 1/127 of a block's largest value, half the integer work on VNNI), on request
// (cpu_int8_activations_for: by default for Q4 weights, MST_CPU_ACT_BITS=8 for all, =16 for
// none).
//
// One block of 32 activations: x[i] ~= d * q[i] with |q[i]| <= 32767 (127 in the 8-bit
// tables), and `sum` is the
// exact float sum of the block's activations, which Q4's minimum term needs
// (sum_i m * x[i] = m * sum).
struct QuantizedActivation {
    float d;
    float sum;
    int16_t q[32];
};

struct QuantKernels {
    // Quantize `cols` floats of x into ceil(cols / 32) blocks (the last padded with zeros).
    void (*quantize_activation)(const float *x, int64_t cols, QuantizedActivation *out) = nullptr;

    // For each weight row r < n_rows (row_bytes apart, n_blocks blocks each) and token
    // t < n_tok (1 <= n_tok <= max_tokens, activation rows ldx blocks apart):
    //   y[t * ldy + r] = sum over blocks of dot(w[r] block, x[t] block)
    using DotRowsFn = void (*)(const void *w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks,
                               const QuantizedActivation *x, int64_t ldx, int n_tok, float *y, int64_t ldy);
    DotRowsFn dot_rows_q8 = nullptr;
    DotRowsFn dot_rows_q4 = nullptr;
    int max_tokens = 1;
    // Whether quantize_activation makes 8-bit values (|q| <= 127), which the row kernels of
    // the table may rely on; the 16-bit tables' kernels take either.
    bool int8_activations = false;
};

const QuantKernels &quant_kernels_scalar();
#if defined(__x86_64__)
const QuantKernels &quant_kernels_avx2();
const QuantKernels &quant_kernels_avx512();
// The Q8 and Q4 row kernels on AVX-512 VNNI (quant_kernels_avx512_vnni.cpp), exactly the
// integer sums of the others; the AVX-512 table uses them when the CPU has VNNI and
// MST_CPU_VNNI is not 0.
QuantKernels::DotRowsFn quant_dot_rows_q8_avx512_vnni();
QuantKernels::DotRowsFn quant_dot_rows_q4_avx512_vnni();
// The same for 8-bit activations (|q| <= 127): one vpdpbusd per pair of blocks.
QuantKernels::DotRowsFn quant_dot_rows_q8_avx512_vnni_int8();
QuantKernels::DotRowsFn quant_dot_rows_q4_avx512_vnni_int8();
const QuantKernels &quant_kernels_avx2_int8();
const QuantKernels &quant_kernels_avx512_int8();
// Whether this CPU has AVX-512 VNNI and MST_CPU_VNNI (read once) does not turn it off.
bool cpu_use_avx512_vnni();
// The Q8 and Q4 row kernels for 8-bit activations on AMX-INT8 (quant_kernels_amx.cpp), for
// up to kAmxMaxTokens tokens per call. Calls of fewer than `min_tokens` tokens go to
// `few_tokens` (the table's own kernel) in calls of at most `few_max_tokens`. The 8-bit
// AVX-512 table uses them when cpu_use_amx() (cpu_isa.h) says so, Q4 from kAmxMinTokens
// tokens (about where they start to pay), Q8 only under MST_CPU_AMX=all (they did not pay:
// bench/README.md "AMX-INT8 for the prompt's products"). Each call remembers its arguments
// for the kernel it returns: call once per type.
constexpr int kAmxMaxTokens = 16;
constexpr int kAmxMinTokens = 9;
QuantKernels::DotRowsFn quant_dot_rows_q8_amx_int8(QuantKernels::DotRowsFn few_tokens, int few_max_tokens,
                                                   int min_tokens);
QuantKernels::DotRowsFn quant_dot_rows_q4_amx_int8(QuantKernels::DotRowsFn few_tokens, int few_max_tokens,
                                                   int min_tokens);
#endif

// The quantized table that matches a float kernel table: the AVX-512 one for the AVX-512
// table, the AVX2 one for the AVX2 table, else the scalar one. Keyed on the table so
// that MST_CPU_ISA=scalar (or avx2) forces those quantized kernels too.
const QuantKernels &quant_kernels_for(const CpuKernels &kernels);

// The 8-bit-activation tables: scalar (the reference), AVX2 (the 16-bit madd kernels on 8-bit
// values), AVX-512 (VNNI where present).
const QuantKernels &quant_kernels_scalar_int8();
const QuantKernels &quant_kernels_int8_for(const CpuKernels &kernels);

// Whether products with weights of type t take 8-bit activations, as MST_CPU_ACT_BITS (read
// once) says: unset (or q4) Q4 weights (GGUF Q4_1; faster on VNNI, and on the reference models
// their logits stay within the golden bounds, Q8's did not); 16 none (the exact reference:
// 16-bit activations keep the kernels' error far below the weights'); 8 every block-quantized
// type, the GGUF legacy ones rounded as llama.cpp's. bench/README.md "8-bit activations".
bool cpu_int8_activations_for(DType t);

// The table for products with weights of type t: quant_kernels_int8_for or
// quant_kernels_for, as cpu_int8_activations_for(t) says.
const QuantKernels &quant_kernels_for(const CpuKernels &kernels, DType t);

// The 8-bit blocks as llama.cpp's Q8_0 / Q8_1 (quant_activation_ggml.cpp): each block's scale
// rounded to f16 and its sum made f16(scale * sum(q)), after an 8-bit table's quantizer.
void finish_activation_blocks_q8_1(QuantizedActivation *blocks, int64_t n_blocks);

// 8-bit blocks as llama.cpp's Q8_K, IQ4_XS's partner: one scale per 256 values, written
// into every 32-value block of them (ceil(cols / 32) blocks, the last padded with zeros).
void quantize_activation_q8_k(const float *x, int64_t cols, QuantizedActivation *out);

// The quantizer for the activations of a product with weights of type t through `kernels`
// (as quant_kernels_for(kernels, t) picked): the table's own, or Q8_K's for IQ4_XS on an
// 8-bit table.
using QuantizeActivationFn = void (*)(const float *x, int64_t cols, QuantizedActivation *out);
QuantizeActivationFn activation_quantizer(const QuantKernels &kernels, DType t);

}  // namespace mst
