// The argument checks every backend shares (declared in backend.h): the preconditions of
// each op itself, whatever runs it. A backend calls the op's check first, then adds only
// its own limits (a device's dispatch sizes, say). Each throws mst::Error naming the op
// and what is wrong: MST_ERR_UNSUPPORTED for a weight type the op does not take,
// MST_ERR_INVALID_ARGUMENT for anything else. Pointers are checked only where the call
// has work to do, so an empty call may pass null pointers.
#include <algorithm>

#include "backends/backend.h"
#include "core/error.h"
#include "core/ggml_legacy_quants.h"
#include "core/mxfp4.h"
#include "core/packed_int.h"

namespace mst {
namespace {

// Weights of a normalisation: `dim` float elements.
void check_norm_weight(const char *op, const WeightView &w, int64_t dim) {
    if (!dtype_is_float_weight(w.dtype))
        fail(MST_ERR_UNSUPPORTED, "{}: weight dtype {} is not supported (F32, F16, BF16)", op, dtype_name(w.dtype));
    if (w.rows * w.cols != dim)
        fail(MST_ERR_INVALID_ARGUMENT, "{}: weight has {}x{} elements, expected {}", op, w.rows, w.cols, dim);
}

// y = x W (matmul_xw) and y = W^T x (matmul_transposed) take the same arguments: x
// [n_tokens][w.rows], y [n_tokens][w.cols], float weights.
void check_xw_params(const char *op, const WeightView &w, const float *x, const float *y, int64_t n_tokens) {
    if (w.rows < 0 || w.cols < 0 || n_tokens < 0)
        fail(MST_ERR_INVALID_ARGUMENT, "{}: negative size (rows {}, cols {}, n_tokens {})", op, w.rows, w.cols,
             n_tokens);
    if (!dtype_is_float_weight(w.dtype))
        fail(MST_ERR_UNSUPPORTED, "{}: weight dtype {} is not supported (F32, F16, BF16)", op, dtype_name(w.dtype));
    if (w.cols > 0 && n_tokens > 0 && (y == nullptr || (w.rows > 0 && (x == nullptr || w.data == nullptr))))
        fail(MST_ERR_INVALID_ARGUMENT, "{}: null pointer (w {}, x {}, y {})", op, w.data != nullptr, x != nullptr,
             y != nullptr);
}

}  // namespace

void check_matmul_params(const WeightView &w, const float *x, const float *y, int64_t n_tokens) {
    if (w.rows < 0 || w.cols < 0 || n_tokens < 0)
        fail(MST_ERR_INVALID_ARGUMENT, "matmul: negative size (rows {}, cols {}, n_tokens {})", w.rows, w.cols,
             n_tokens);
    const bool packed = dtype_is_packed_int(w.dtype);
    const bool mxfp4 = w.dtype == DType::MXFP4;
    if (!dtype_is_float_weight(w.dtype) && !dtype_is_quantized(w.dtype) && !mxfp4 && !packed)
        fail(MST_ERR_UNSUPPORTED,
             "matmul: weight dtype {} is not supported (F32, F16, BF16, Q8, Q4, MXFP4, PACKED_I4, PACKED_I8, "
             "Q4_0, Q5_0, Q5_1, IQ4_NL, IQ4_XS, GGML_MXFP4, Q2_K..Q6_K)",
             dtype_name(w.dtype));
    // moestream's Q8 / Q4 pad a row's last block; a GGML type's rows are whole blocks.
    if (dtype_is_ggml_legacy(w.dtype) && w.cols % int64_t(dtype_block_elems(w.dtype)) != 0)
        fail(MST_ERR_INVALID_ARGUMENT, "matmul: {} weight has {} columns, not a multiple of its {}-element block",
             dtype_name(w.dtype), w.cols, dtype_block_elems(w.dtype));
    if (mxfp4 && w.cols % kMxfp4BlockSize != 0)
        fail(MST_ERR_INVALID_ARGUMENT, "matmul: MXFP4 weight has {} columns, not a multiple of {}", w.cols,
             kMxfp4BlockSize);
    if (packed && w.cols > 0 && (w.group_size < 1 || w.cols % w.group_size != 0))
        fail(MST_ERR_INVALID_ARGUMENT, "matmul: {} weight has group size {}, which does not divide its {} columns",
             dtype_name(w.dtype), w.group_size, w.cols);
    if (w.rows == 0 || n_tokens == 0) return;
    const bool scaled = mxfp4 || packed;
    if (y == nullptr || (w.cols > 0 && (x == nullptr || w.data == nullptr || (scaled && w.scales == nullptr)))) {
        if (scaled)
            fail(MST_ERR_INVALID_ARGUMENT, "matmul: null pointer (w {}, scales {}, x {}, y {})", w.data != nullptr,
                 w.scales != nullptr, x != nullptr, y != nullptr);
        fail(MST_ERR_INVALID_ARGUMENT, "matmul: null pointer (w {}, x {}, y {})", w.data != nullptr, x != nullptr,
             y != nullptr);
    }
}

void check_matmul_xw_params(const WeightView &w, const float *x, const float *y, int64_t n_tokens) {
    check_xw_params("matmul_xw", w, x, y, n_tokens);
}

void check_matmul_transposed_params(const WeightView &w, const float *x, const float *y, int64_t n_tokens) {
    check_xw_params("matmul_transposed", w, x, y, n_tokens);
}

void check_matmul_block_fp8_params(const WeightView &w, const WeightView &scale_inv, int32_t block_rows,
                                   int32_t block_cols, const float *x, const float *y, int64_t n_tokens) {
    if (w.dtype != DType::F8_E4M3 || scale_inv.dtype != DType::F32)
        fail(MST_ERR_UNSUPPORTED, "matmul_block_fp8: needs F8_E4M3 weights and F32 scales, got {} and {}",
             dtype_name(w.dtype), dtype_name(scale_inv.dtype));
    if (w.rows < 0 || w.cols < 0 || n_tokens < 0 || block_rows < 1 || block_cols < 1)
        fail(MST_ERR_INVALID_ARGUMENT, "matmul_block_fp8: bad size (rows {}, cols {}, n_tokens {}, block {}x{})",
             w.rows, w.cols, n_tokens, block_rows, block_cols);
    const int64_t scale_rows = (w.rows + block_rows - 1) / block_rows;
    const int64_t scale_cols = (w.cols + block_cols - 1) / block_cols;
    if (scale_inv.rows != scale_rows || scale_inv.cols != scale_cols)
        fail(MST_ERR_INVALID_ARGUMENT,
             "matmul_block_fp8: {}x{} scales for a {}x{} weight in {}x{} blocks; expected {}x{}", scale_inv.rows,
             scale_inv.cols, w.rows, w.cols, block_rows, block_cols, scale_rows, scale_cols);
    if (w.rows > 0 && n_tokens > 0 &&
        (y == nullptr || (w.cols > 0 && (x == nullptr || w.data == nullptr || scale_inv.data == nullptr))))
        fail(MST_ERR_INVALID_ARGUMENT, "matmul_block_fp8: null pointer");
}

void check_rms_norm_params(const float *x, const WeightView &w, const float *y, int64_t n_rows, int64_t dim) {
    if (n_rows < 0 || dim <= 0) fail(MST_ERR_INVALID_ARGUMENT, "rms_norm: bad size (n_rows {}, dim {})", n_rows, dim);
    check_norm_weight("rms_norm", w, dim);
    if (n_rows > 0 && (x == nullptr || y == nullptr || w.data == nullptr))
        fail(MST_ERR_INVALID_ARGUMENT, "rms_norm: null pointer");
}

void check_rms_norm_gated_params(const float *x, const float *gate, const WeightView &w, const float *y,
                                 int64_t n_rows, int64_t dim) {
    if (n_rows < 0 || dim <= 0)
        fail(MST_ERR_INVALID_ARGUMENT, "rms_norm_gated: bad size (n_rows {}, dim {})", n_rows, dim);
    check_norm_weight("rms_norm_gated", w, dim);
    if (n_rows > 0 && (x == nullptr || gate == nullptr || y == nullptr || w.data == nullptr))
        fail(MST_ERR_INVALID_ARGUMENT, "rms_norm_gated: null pointer");
}

void check_l2_norm_params(const float *x, int64_t n_rows, int64_t dim, float eps) {
    if (n_rows < 0 || dim <= 0) fail(MST_ERR_INVALID_ARGUMENT, "l2_norm: bad size (n_rows {}, dim {})", n_rows, dim);
    if (!(eps >= 0.0f)) fail(MST_ERR_INVALID_ARGUMENT, "l2_norm: eps must be >= 0, got {}", eps);
    if (n_rows > 0 && x == nullptr) fail(MST_ERR_INVALID_ARGUMENT, "l2_norm: null pointer");
}

void check_rope_params(const float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
                       const int32_t *positions, const RopeParams &p) {
    if (n_tokens < 0 || n_heads < 0 || head_dim <= 0)
        fail(MST_ERR_INVALID_ARGUMENT, "rope: bad size (n_tokens {}, n_heads {}, head_dim {})", n_tokens, n_heads,
             head_dim);
    if (p.rotary_dim < 0 || p.rotary_dim % 2 != 0 || p.rotary_dim > head_dim)
        fail(MST_ERR_INVALID_ARGUMENT, "rope: rotary_dim {} must be even and in [0, head_dim {}]", p.rotary_dim,
             head_dim);
    if (n_tokens > 0 && n_heads > 0 && p.rotary_dim > 0 &&
        (x == nullptr || positions == nullptr || p.inv_freq == nullptr))
        fail(MST_ERR_INVALID_ARGUMENT, "rope: null pointer");
}

void check_attention_params(const float *q, const float *k_cache, const float *v_cache, const float *out,
                            const AttentionParams &p) {
    if (p.n_tokens < 0 || p.n_heads <= 0 || p.n_kv_heads <= 0 || p.head_dim <= 0 || p.v_head_dim <= 0 ||
        p.pos0 < 0 || p.sliding_window < 0)
        fail(MST_ERR_INVALID_ARGUMENT,
             "attention: bad parameters (n_tokens {}, n_heads {}, n_kv_heads {}, head_dim {}, v_head_dim {}, "
             "pos0 {}, sliding_window {})",
             p.n_tokens, p.n_heads, p.n_kv_heads, p.head_dim, p.v_head_dim, p.pos0, p.sliding_window);
    if (p.n_heads % p.n_kv_heads != 0)
        fail(MST_ERR_INVALID_ARGUMENT, "attention: n_heads {} is not a multiple of n_kv_heads {}", p.n_heads,
             p.n_kv_heads);
    const int64_t n_ctx = int64_t(p.pos0) + p.n_tokens;
    if (p.n_kv_heads > 1 && p.kv_stride < n_ctx * std::max(p.head_dim, p.v_head_dim))
        fail(MST_ERR_INVALID_ARGUMENT, "attention: kv_stride {} is below {} positions x {} dims", p.kv_stride, n_ctx,
             std::max(p.head_dim, p.v_head_dim));
    if (p.n_tokens > 0 && (q == nullptr || k_cache == nullptr || v_cache == nullptr || out == nullptr))
        fail(MST_ERR_INVALID_ARGUMENT, "attention: null pointer");
}

void check_latent_attention_params(const float *q, const float *cache, const float *out,
                                   const LatentAttentionParams &p) {
    if (p.n_tokens < 0 || p.n_heads <= 0 || p.latent_dim <= 0 || p.rope_dim < 0 || p.pos0 < 0)
        fail(MST_ERR_INVALID_ARGUMENT,
             "latent_attention: bad parameters (n_tokens {}, n_heads {}, latent_dim {}, rope_dim {}, pos0 {})",
             p.n_tokens, p.n_heads, p.latent_dim, p.rope_dim, p.pos0);
    if (p.n_tokens > 0 && (q == nullptr || cache == nullptr || out == nullptr))
        fail(MST_ERR_INVALID_ARGUMENT, "latent_attention: null pointer");
}

void check_silu_mul_params(const float *gate, const float *up, const float *out, int64_t n) {
    if (n < 0) fail(MST_ERR_INVALID_ARGUMENT, "silu_mul: negative size {}", n);
    if (n > 0 && (gate == nullptr || up == nullptr || out == nullptr))
        fail(MST_ERR_INVALID_ARGUMENT, "silu_mul: null pointer");
}

void check_sigmoid_mul_params(const float *x, const float *gate, int64_t n_rows, int64_t dim, int64_t gate_dim) {
    if (n_rows < 0 || dim <= 0 || gate_dim <= 0 || dim % gate_dim != 0)
        fail(MST_ERR_INVALID_ARGUMENT, "sigmoid_mul: bad size (n_rows {}, dim {}, gate_dim {}: it must divide dim)",
             n_rows, dim, gate_dim);
    if (n_rows > 0 && (x == nullptr || gate == nullptr)) fail(MST_ERR_INVALID_ARGUMENT, "sigmoid_mul: null pointer");
}

void check_clamped_swiglu_params(const float *gate_up, const float *out, int64_t n_rows, int64_t n_inter) {
    if (n_rows < 0 || n_inter < 0)
        fail(MST_ERR_INVALID_ARGUMENT, "clamped_swiglu: negative size (n_rows {}, n_inter {})", n_rows, n_inter);
    if (n_rows > 0 && n_inter > 0 && (gate_up == nullptr || out == nullptr))
        fail(MST_ERR_INVALID_ARGUMENT, "clamped_swiglu: null pointer");
}

void check_causal_conv1d_params(const float *x, const WeightView &w, const float *state_out, const float *y,
                                int64_t n_tokens, int64_t channels) {
    if (n_tokens < 0 || channels <= 0)
        fail(MST_ERR_INVALID_ARGUMENT, "causal_conv1d: bad size (n_tokens {}, channels {})", n_tokens, channels);
    if (!dtype_is_float_weight(w.dtype))
        fail(MST_ERR_UNSUPPORTED, "causal_conv1d: weight dtype {} is not supported (F32, F16, BF16)",
             dtype_name(w.dtype));
    if (w.rows != channels || w.cols < 1)
        fail(MST_ERR_INVALID_ARGUMENT, "causal_conv1d: weight is {}x{}, expected {} channels x kernel >= 1", w.rows,
             w.cols, channels);
    const int64_t hist = w.cols - 1;
    if (w.data == nullptr || (n_tokens > 0 && (x == nullptr || y == nullptr)) || (hist > 0 && state_out == nullptr))
        fail(MST_ERR_INVALID_ARGUMENT, "causal_conv1d: null pointer");
}

void check_gated_delta_rule_params(const float *q, const float *k, const float *v, const float *g, const float *beta,
                                   const float *state_out, const float *out, const Backend::DeltaRuleShape &s) {
    if (s.n_tokens < 0 || s.n_heads <= 0 || s.n_k_heads <= 0 || s.k_dim <= 0 || s.v_dim <= 0)
        fail(MST_ERR_INVALID_ARGUMENT,
             "gated_delta_rule: bad shape (n_tokens {}, n_heads {}, n_k_heads {}, k_dim {}, v_dim {})", s.n_tokens,
             s.n_heads, s.n_k_heads, s.k_dim, s.v_dim);
    if (s.n_heads % s.n_k_heads != 0)
        fail(MST_ERR_INVALID_ARGUMENT, "gated_delta_rule: n_heads {} is not a multiple of n_k_heads {}", s.n_heads,
             s.n_k_heads);
    if (state_out == nullptr || (s.n_tokens > 0 && (!q || !k || !v || !g || !beta || !out)))
        fail(MST_ERR_INVALID_ARGUMENT, "gated_delta_rule: null pointer");
}

int64_t check_routed_swiglu_params(const float *h, const float *out, int64_t n_tokens, int64_t hidden,
                                   const SwigluExpertUse *experts, size_t n_experts) {
    if (n_tokens < 0 || hidden <= 0)
        fail(MST_ERR_INVALID_ARGUMENT, "routed_swiglu: bad size (n_tokens {}, hidden {})", n_tokens, hidden);
    if (n_experts > 0 && experts == nullptr)
        fail(MST_ERR_INVALID_ARGUMENT, "routed_swiglu: null pointer ({} experts, no array)", n_experts);
    int64_t total = 0;
    for (size_t e = 0; e < n_experts; ++e) {
        const SwigluExpertUse &u = experts[e];
        const int64_t inter = u.gate.rows;
        if (u.gate.cols != hidden || u.up.rows != inter || u.up.cols != hidden || u.down.rows != hidden ||
            u.down.cols != inter)
            fail(MST_ERR_INVALID_ARGUMENT,
                 "routed_swiglu: expert {} has gate {}x{}, up {}x{}, down {}x{} for hidden {}", e, u.gate.rows,
                 u.gate.cols, u.up.rows, u.up.cols, u.down.rows, u.down.cols, hidden);
        if (u.n < 0 || (u.n > 0 && (u.tokens == nullptr || u.weights == nullptr)))
            fail(MST_ERR_INVALID_ARGUMENT, "routed_swiglu: expert {} has {} uses without tokens or weights", e, u.n);
        for (int64_t i = 0; i < u.n; ++i)
            if (u.tokens[i] < 0 || u.tokens[i] >= n_tokens)
                fail(MST_ERR_INVALID_ARGUMENT, "routed_swiglu: token {} outside 0..{}", u.tokens[i], n_tokens - 1);
        total += u.n;
    }
    if (total > 0 && (h == nullptr || out == nullptr)) fail(MST_ERR_INVALID_ARGUMENT, "routed_swiglu: null pointer");
    return total;
}

void check_add_params(const float *x, const float *y, int64_t n) {
    if (n < 0) fail(MST_ERR_INVALID_ARGUMENT, "add: bad size {}", n);
    if (n > 0 && (x == nullptr || y == nullptr)) fail(MST_ERR_INVALID_ARGUMENT, "add: null pointer");
}

void check_copy_rows_params(const float *src, int64_t src_stride, const float *dst, int64_t n_rows, int64_t row_len) {
    if (n_rows < 0 || row_len < 0 || src_stride < row_len)
        fail(MST_ERR_INVALID_ARGUMENT, "copy_rows: bad size (n_rows {}, row_len {}, src_stride {})", n_rows, row_len,
             src_stride);
    if (n_rows > 0 && row_len > 0 && (src == nullptr || dst == nullptr))
        fail(MST_ERR_INVALID_ARGUMENT, "copy_rows: null pointer");
}

void check_matmuls_one_input_params(std::span<const WeightView> w, std::span<float *const> y, const float *x,
                                    int64_t n_tokens) {
    if (w.size() != y.size())
        fail(MST_ERR_INVALID_ARGUMENT, "matmuls_one_input: {} weights but {} outputs", w.size(), y.size());
    for (size_t i = 0; i < w.size(); ++i) {
        if (w[i].cols != w[0].cols)
            fail(MST_ERR_INVALID_ARGUMENT, "matmuls_one_input: weight {} has {} columns, weight 0 {} (one input)", i,
                 w[i].cols, w[0].cols);
        check_matmul_params(w[i], x, y[i], n_tokens);
    }
}

}  // namespace mst
