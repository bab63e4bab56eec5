// The CPU backend: SIMD kernels chosen at run time (cpu_isa.h), run in parallel on the
// worker pool of parallel_for.h.
// The ops are spread over cpu_backend.cpp (matmul, silu_mul), norm_rope.cpp and
// attention.cpp.
#pragma once

#include "backends/backend.h"
#include "backends/cpu/cpu_isa.h"
#include "backends/cpu/cpu_kernels.h"

namespace mst {

class CpuBackend final : public Backend {
public:
    // n_threads >= 1 compute threads; `isa` must be supported by this CPU (checked:
    // MST_ERR_UNSUPPORTED otherwise, MST_ERR_INVALID_ARGUMENT for n_threads < 1). The
    // registry creates it with cpu_isa_from_env(); tests create one per ISA directly.
    CpuBackend(int n_threads, CpuIsa isa);

    const char *name() const override { return "cpu"; }
    int n_threads() const override { return n_threads_; }
    CpuIsa isa() const { return isa_; }

    void matmul(const WeightView &w, const float *x, float *y, int64_t n_tokens) override;
    void matmuls_one_input(std::span<const WeightView> w, std::span<float *const> y, const float *x,
                           int64_t n_tokens) override;
    void rms_norm(const float *x, const WeightView &w, float weight_offset, float eps, float *y, int64_t n_rows,
                  int64_t dim) override;
    void rope(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t *positions,
              const RopeParams &p) override;
    void attention(const float *q, const float *k_cache, const float *v_cache, float *out,
                   const AttentionParams &p) override;
    void silu_mul(const float *gate, const float *up, float *out, int64_t n) override;
    void matmul_xw(const WeightView &w, const float *x, float *y, int64_t n_tokens) override;  // op_matmul_xw.cpp
    void clamped_swiglu(const float *gate_up, float *out, int64_t n_rows, int64_t n_inter, float alpha,
                        float limit) override;  // op_clamped_swiglu.cpp

    // Linear attention and gating, one file each: op_causal_conv1d.cpp, op_l2_norm.cpp,
    // op_gated_delta_rule.cpp, op_rms_norm_gated.cpp, op_sigmoid_mul.cpp.
    void causal_conv1d(const float *x, const WeightView &w, const float *state_in, float *state_out, float *y,
                       int64_t n_tokens, int64_t channels, bool silu) override;
    void l2_norm(float *x, int64_t n_rows, int64_t dim, float eps) override;
    void gated_delta_rule(const float *q, const float *k, const float *v, const float *g, const float *beta,
                          const float *state_in, float *state_out, float *out, const DeltaRuleShape &shape) override;
    void rms_norm_gated(const float *x, const float *gate, const WeightView &w, float eps, float *y, int64_t n_rows,
                        int64_t dim) override;
    void sigmoid_mul(float *x, const float *gate, int64_t n_rows, int64_t dim, int64_t gate_dim) override;

private:
    // matmul on MXFP4 weights (op_matmul_mxfp4.cpp), its arguments checked by matmul.
    void matmul_mxfp4(const WeightView &w, const float *x, float *y, int64_t n_tokens);
    // matmul on PACKED_I4 / PACKED_I8 weights (op_matmul_packed_int.cpp), checked by matmul.
    void matmul_packed_int(const WeightView &w, const float *x, float *y, int64_t n_tokens);

    // Threads for an op of `work` elementary steps: 1 when a parallel region would cost
    // more than the op itself.
    int threads_for(int64_t work) const;

    int n_threads_;
    CpuIsa isa_;
    const CpuKernels &kernels_;

public:
    // op_matmul_transposed.cpp
    void matmul_transposed(const WeightView &w, const float *x, float *y, int64_t n_tokens) override;
    // op_matmul_block_fp8.cpp
    void matmul_block_fp8(const WeightView &w, const WeightView &scale_inv, int32_t block_rows, int32_t block_cols,
                          const float *x, float *y, int64_t n_tokens) override;
    // op_latent_attention.cpp
    void latent_attention(const float *q, const float *cache, float *out, const LatentAttentionParams &p) override;
    // op_routed_swiglu.cpp: decode and prefill groups fused into two parallel regions per
    // pass of up to a few thousand token rows; other weight types take
    // Backend::routed_swiglu.
    void routed_swiglu(const float *h, float *out, int64_t n_tokens, int64_t hidden, const SwigluExpertUse *experts,
                       size_t n_experts) override;

private:
    // One pass of routed_swiglu over experts whose dtypes are fusable.
    void fused_routed_swiglu(const float *h, float *out, int64_t n_tokens, int64_t hidden,
                             const SwigluExpertUse *experts, size_t n_experts);
};

}  // namespace mst
