// The kernel interface every compute backend implements. Models call these ops on
// float32 activations in host memory and weights in their stored type; a backend never
// knows where the weight bytes came from (resident memory or the expert cache).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace mst {

// A row-major weight matrix [rows][cols] (a vector is rows = 1) in its stored type.
struct WeightView {
    DType dtype = DType::F32;
    const void *data = nullptr;
    int64_t rows = 0;
    int64_t cols = 0;
    // MXFP4 only (core/mxfp4.h): data holds the blocks [rows][cols / 2] and this the
    // e8m0 scales [rows][cols / 32].
    const uint8_t *scales = nullptr;
};

struct RopeParams {
    int32_t rotary_dim = 0;          // leading dims of each head that rotate (even, <= head_dim)
    const float *inv_freq = nullptr; // rotary_dim / 2 inverse frequencies (scaling already applied)
    float attention_factor = 1.0f;   // multiplies cos and sin (YaRN's mscale); 1 otherwise
    bool interleaved = false;        // false: rotate halves (x[i], x[i + d/2]); true: pairs (x[2i], x[2i+1])
};

struct AttentionParams {
    int32_t n_tokens = 0;        // queries in this call
    int32_t n_heads = 0;         // query heads
    int32_t n_kv_heads = 0;      // key/value heads (n_heads % n_kv_heads == 0)
    int32_t head_dim = 0;        // q/k head size
    int32_t v_head_dim = 0;      // v head size (= head_dim except MLA)
    int32_t pos0 = 0;            // position of the first query; query t sits at pos0 + t
    int64_t kv_stride = 0;       // elements between consecutive kv heads in the caches (>= n_ctx * dim)
    float scale = 1.0f;          // score multiplier, usually 1/sqrt(head_dim)
    int32_t sliding_window = 0;  // > 0: query at p sees keys in (p - window, p]
    const float *sinks = nullptr;// optional per-head sink logits (gpt-oss), joins the softmax denominator
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual const char *name() const = 0;
    virtual int n_threads() const = 0;

    // y[t][r] = sum_c w[r][c] * x[t][c] for t < n_tokens. x: [n_tokens][w.cols], y: [n_tokens][w.rows].
    // Weights F32, F16, BF16, or MXFP4 (w.cols a multiple of 32, w.scales set), computed
    // on the stored type.
    virtual void matmul(const WeightView &w, const float *x, float *y, int64_t n_tokens) = 0;

    // For each of n_rows rows of `dim`: y = x / sqrt(mean(x^2) + eps) * (weight_offset + w).
    // weight_offset is 0 for plain RMSNorm and 1 for the (1 + w) variant. x may equal y.
    virtual void rms_norm(const float *x, const WeightView &w, float weight_offset, float eps, float *y,
                          int64_t n_rows, int64_t dim) = 0;

    // Rotate, in place, the first rotary_dim dims of each head of x: [n_tokens][n_heads][head_dim],
    // token t at positions[t].
    virtual void rope(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
                      const int32_t *positions, const RopeParams &p) = 0;

    // Causal softmax attention. q: [n_tokens][n_heads][head_dim];
    // k_cache: kv head h, position j at k_cache[h * kv_stride + j * head_dim];
    // v_cache: kv head h, position j at v_cache[h * kv_stride + j * v_head_dim];
    // positions 0 .. pos0 + n_tokens - 1 must already be in the caches.
    // out: [n_tokens][n_heads][v_head_dim].
    virtual void attention(const float *q, const float *k_cache, const float *v_cache, float *out,
                           const AttentionParams &p) = 0;

    // out[i] = silu(gate[i]) * up[i]. out may equal gate or up.
    virtual void silu_mul(const float *gate, const float *up, float *out, int64_t n) = 0;

    // y[t][c] = sum_r x[t][r] * w[r][c] for t < n_tokens: the product x W with W stored
    // [in][out] (rows = inputs, cols = outputs), the orientation gpt-oss keeps its expert
    // matrices in, computed without transposing them. x: [n_tokens][w.rows],
    // y: [n_tokens][w.cols]; they must not overlap. Weights F32, F16, BF16.
    virtual void matmul_xw(const WeightView &w, const float *x, float *y, int64_t n_tokens) = 0;

    // gpt-oss's clamped SwiGLU over n_rows rows of interleaved gate/up pairs. gate_up:
    // [n_rows][2 * n_inter] with gate_i at column 2i and up_i at 2i + 1; out: [n_rows][n_inter]:
    //   g = min(gate_i, limit), u = clamp(up_i, -limit, limit), out_i = (u + 1) * g * sigmoid(alpha * g).
    // out must not overlap gate_up.
    virtual void clamped_swiglu(const float *gate_up, float *out, int64_t n_rows, int64_t n_inter, float alpha,
                                float limit) = 0;
};

// The registry: backends by name, chosen at run time.
struct BackendInfo {
    std::string name;
    std::string description;
};
std::vector<BackendInfo> available_backends();

// Create a backend by name ("cpu", or "auto" for the best available). n_threads 0 = all cores.
// Throws mst::Error(MST_ERR_BACKEND / MST_ERR_INVALID_ARGUMENT) naming what is missing.
// The CPU backend's SIMD path is the best the CPU has unless the environment variable
// MST_CPU_ISA names one (scalar | avx2 | avx512 | auto; see backends/cpu/cpu_isa.h).
std::unique_ptr<Backend> create_backend(const std::string &name, int n_threads);

}  // namespace mst
