// The kernel interface every compute backend implements. Models call these ops on
// float32 activations in host memory and weights in their stored type; a backend never
// knows where the weight bytes came from (resident memory or the expert cache).
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <span>
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
    // What a device backend may keep a copy of; the CPU backend ignores both. `stable`:
    // these bytes (and `scales`) do not change while the model lives, so a copy may be
    // cached by (data, size). A view that slices a stable tensor is itself stable: it has
    // its own pointer and size, hence its own copy. `expert_key` (nonzero): the identity
    // of a streamed expert part (layer, expert, part); the bytes for one key never change,
    // though the host memory holding them is reused for other experts. A view with
    // neither is copied to the device at every use.
    bool stable = false;
    uint64_t expert_key = 0;
    // PACKED_I4 / PACKED_I8 only (core/packed_int.h): data holds the I32 words
    // [rows][packed_int_row_words(cols)], `scales` the bf16 scales [rows][cols / group_size],
    // and group_size the inputs sharing one scale (cols for one scale per row).
    int64_t group_size = 0;
};

// The expert_key of part `part` of expert `expert` in `layer` (never 0).
inline uint64_t make_expert_key(int64_t layer, int64_t expert, int64_t part) {
    return (uint64_t(layer + 1) << 40) | (uint64_t(expert) << 8) | uint64_t(part + 1);
}

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
    // Nonzero: the identity of these caches (one per cache and layer, never reused), and a
    // promise that positions before pos0 hold what they held at the previous call with
    // this id, so a device backend may keep a copy and send only the new positions. 0:
    // no promise; every position is read anew.
    uint64_t cache_id = 0;
};

// Attention over one shared cache of latent rows: the absorbed form of multi-head latent
// attention (DeepSeek-V2/V3), where every head's keys and values are the same cached rows.
struct LatentAttentionParams {
    int32_t n_tokens = 0;    // queries in this call
    int32_t n_heads = 0;     // query heads, all reading the same rows
    int32_t latent_dim = 0;  // leading dims of a row: part of the key, and the whole value
    int32_t rope_dim = 0;    // trailing dims of a row: the rest of the key
    int32_t pos0 = 0;        // position of the first query; query t sits at pos0 + t
    float scale = 1.0f;      // score multiplier
    uint64_t cache_id = 0;   // as AttentionParams::cache_id
};

// dst[c] += w * src[c] for c < n: how a routed expert's output joins a token's row. Every
// host path adds through this one function, so their sums agree bit for bit.
inline void add_scaled(float *dst, float w, const float *src, int64_t n) {
    for (int64_t c = 0; c < n; ++c) dst[c] += w * src[c];
}

// One routed expert of a SwiGLU MoE layer and the tokens it serves (Backend::routed_swiglu).
struct SwigluExpertUse {
    WeightView gate, up, down;          // gate, up: [I][H]; down: [H][I]
    const int64_t *tokens = nullptr;    // n token indices into h / out
    const float *weights = nullptr;     // n routing weights
    int64_t n = 0;
};

// What a device backend has done on the host so far (mst_backend_stats); all 0 on the CPU.
struct BackendCounters {
    uint64_t submissions = 0;           // command buffers handed to the device
    uint64_t replayed = 0;              // of those, recordings submitted again
    uint64_t recorded = 0;              // of those, recorded afresh
    uint64_t pipelines_created = 0;     // compute pipelines compiled (each on first use)
    double pipeline_create_seconds = 0; // host time their creation took
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual const char *name() const = 0;
    virtual BackendCounters counters() const { return {}; }
    virtual int n_threads() const = 0;

    // y[t][r] = sum_c w[r][c] * x[t][c] for t < n_tokens. x: [n_tokens][w.cols], y: [n_tokens][w.rows].
    // Weights F32, F16, BF16, Q8, Q4, MXFP4 (w.cols a multiple of 32, w.scales set), or
    // PACKED_I4 / PACKED_I8 (w.group_size dividing w.cols, w.scales set), or a GGML legacy
    // type (GGML_Q4_0 ... GGML_MXFP4, core/ggml_legacy_quants.h; rows of whole blocks),
    // computed on the stored type.
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

    // ---- Linear attention and gating (Gated DeltaNet: Qwen3.5, Qwen3-Next) ----

    // Causal depthwise 1-D convolution over time that carries its history between calls.
    // x, y: [n_tokens][channels]; w: [channels][kernel] (kernel = w.cols >= 1, w.rows = channels).
    // state_in, state_out: [kernel - 1][channels], the inputs at the kernel - 1 positions just
    // before x, oldest first; state_in nullptr means zeros (the start of a sequence).
    //   y[t][c] = act(sum_j w[c][j] * in[t - kernel + 1 + j][c]), in[-1] = state_in[kernel - 2], ...
    // act is SiLU when `silu`, else identity. state_out receives the last kernel - 1 inputs
    // (state and x together); it may equal state_in. y must not overlap x or the states.
    virtual void causal_conv1d(const float *x, const WeightView &w, const float *state_in, float *state_out,
                               float *y, int64_t n_tokens, int64_t channels, bool silu) = 0;

    // In place, for n_rows rows of `dim`: x = x / sqrt(sum(x^2) + eps).
    virtual void l2_norm(float *x, int64_t n_rows, int64_t dim, float eps) = 0;

    struct DeltaRuleShape {
        int64_t n_tokens = 0;
        int64_t n_heads = 0;    // value heads: state, v, g, beta and out are per value head
        int64_t n_k_heads = 0;  // query/key heads; value head h reads key head h / (n_heads / n_k_heads)
        int64_t k_dim = 0;
        int64_t v_dim = 0;
        float scale = 1.0f;     // multiplies q (usually 1 / sqrt(k_dim))
    };

    // The gated delta rule, token after token, for every value head h:
    //   S = exp(g[t][h]) * S;  S += k_t (beta[t][h] * (v_t - S^T k_t))^T;  out_t = S^T (scale * q_t)
    // q, k: [n_tokens][n_k_heads][k_dim] (L2-normalised by the caller); v: [n_tokens][n_heads][v_dim];
    // g (log decay, <= 0), beta: [n_tokens][n_heads]; out: [n_tokens][n_heads][v_dim].
    // state_in, state_out: S as [n_heads][k_dim][v_dim]; state_in nullptr means zeros;
    // state_out may equal state_in. One call covers the whole batch of tokens.
    virtual void gated_delta_rule(const float *q, const float *k, const float *v, const float *g,
                                  const float *beta, const float *state_in, float *state_out, float *out,
                                  const DeltaRuleShape &shape) = 0;

    // For each of n_rows rows of `dim`: y = x / sqrt(mean(x^2) + eps) * w * silu(gate), with
    // gate [n_rows][dim] (the gated RMSNorm of Gated DeltaNet; plain w, no offset). y may equal x.
    virtual void rms_norm_gated(const float *x, const float *gate, const WeightView &w, float eps, float *y,
                                int64_t n_rows, int64_t dim) = 0;

    // In place, x[r][i] *= sigmoid(gate[r][i / (dim / gate_dim)]) for x [n_rows][dim] and
    // gate [n_rows][gate_dim]; gate_dim divides dim: dim for an elementwise gate (gated
    // attention), 1 for one gate per row (a gated shared expert).
    virtual void sigmoid_mul(float *x, const float *gate, int64_t n_rows, int64_t dim, int64_t gate_dim) = 0;

    // y[t][c] = sum_r w[r][c] * x[t][r] for t < n_tokens: the product with the transpose of
    // w, without a transposed copy (MLA folds kv_b_proj's key rows into the query this way).
    // x: [n_tokens][w.rows], y: [n_tokens][w.cols]; F32, F16 or BF16 weights.
    virtual void matmul_transposed(const WeightView &w, const float *x, float *y, int64_t n_tokens) = 0;

    // y = W x as matmul, for FP8 E4M3 weights with one float32 scale per block of
    // block_rows x block_cols weights (DeepSeek-V3's `weight_scale_inv`):
    // W[r][c] = fp8(w[r][c]) * scale_inv[r / block_rows][c / block_cols]. w: F8_E4M3
    // [rows][cols]; scale_inv: F32 [ceil(rows / block_rows)][ceil(cols / block_cols)],
    // its data need not be aligned. x: [n_tokens][cols], y: [n_tokens][rows].
    virtual void matmul_block_fp8(const WeightView &w, const WeightView &scale_inv, int32_t block_rows,
                                  int32_t block_cols, const float *x, float *y, int64_t n_tokens) = 0;

    // Causal softmax attention of p.n_heads heads over one latent cache. q:
    // [n_tokens][n_heads][latent_dim + rope_dim]; position j's row is
    // cache[j * (latent_dim + rope_dim)], the key of every head, and its first latent_dim
    // values are the value; positions 0 .. pos0 + n_tokens - 1 must be in the cache.
    // out: [n_tokens][n_heads][latent_dim].
    virtual void latent_attention(const float *q, const float *cache, float *out,
                                  const LatentAttentionParams &p) = 0;

    // A group of routed SwiGLU experts in one call: for each expert in order, for each of
    // its tokens i, out[tokens[i]] += weights[i] * down(silu(gate x) * up x), x = h[tokens[i]].
    // h, out: [n_tokens][hidden]. Additions into a token's row happen in expert order.
    // The base implementation runs matmul and silu_mul per expert (what the CPU backend
    // uses); a device backend overrides it to run the whole group in one submission.
    virtual void routed_swiglu(const float *h, float *out, int64_t n_tokens, int64_t hidden,
                               const SwigluExpertUse *experts, size_t n_experts);

    // A batch of ops a device backend may run in one submission. Between begin_batch and
    // end_batch the caller must not touch, on the host, memory that an op of the batch
    // writes, nor change memory that one reads; the results are all in place once
    // end_batch returns. An op may read what an earlier op of the batch wrote (the device
    // keeps it): inside a batch a host address names the device's copy of a result.
    // Batches nest: an inner pair is part of the outer batch, which runs at its own
    // end_batch (a model may put a whole step in one batch around library pieces that
    // batch their own ops). The CPU backend runs each op at once (no-ops here).
    virtual void begin_batch() {}
    virtual void end_batch() {}
    // Inside a batch: run what is recorded so far and put its results in host memory, so
    // that the host may read them (router logits before top-k) and write memory the batch
    // used; the batch goes on. Outside a batch, and on the CPU backend, nothing to do.
    virtual void sync() {}
    // Host memory [ptr, ptr + bytes) is about to be freed or reused: results a pending op
    // of the batch would deliver there are dropped, and later ops no longer take that
    // address for the device's copy. Scratch vectors of a step say so as they go out of
    // scope (BackendVector). Nothing to do outside a batch and on the CPU backend.
    virtual void drop_results(const void *ptr, size_t bytes) { (void)ptr, (void)bytes; }
    // Whether BackendVector's floats start zeroed. They need not: every op writes its whole
    // result before anything reads it, and a device backend that keeps a step's results on
    // the device never touches the vector's host pages, so an uninitialised vector costs
    // no memset and no page faults (18 MiB a layer of a 512-token prefill of the
    // Qwen3-30B-A3B shape: q, k, v and the attention's output). A backend may ask for the
    // zeroed vectors to compare with the way it was (the Vulkan backend under
    // MST_VULKAN_PREFILL_HOST=0).
    virtual bool zeroed_scratch_vectors() const { return false; }
    // Inside a batch: run what is recorded so far and deliver to host memory only the
    // results that lie in `reads` (what the host reads next: a router's ids and weights);
    // the batch goes on. Every other result stays on the device, where later ops read it,
    // and reaches host memory at end_batch (or at a later sync that names it). Until then
    // the host must neither read nor write those addresses (drop_results first to reuse
    // one). A backend without lazy delivery delivers everything (sync).
    struct HostSpan {
        const void *ptr;
        size_t bytes;
    };
    virtual void sync_reads(std::span<const HostSpan> reads) {
        (void)reads;
        sync();
    }

    // ---- Ops that keep a step's host work inside a batch (docs/device_graph.md) ----

    // x[i] += y[i] for i < n (the residual add). x and y must not overlap unless equal.
    virtual void add(float *x, const float *y, int64_t n);
    // Gather n_rows rows of row_len floats, row r at src + r * src_stride, into dst
    // [n_rows][row_len] (contiguous): the KV append of a step's keys or values of one head.
    // dst must not overlap the rows read.
    virtual void copy_rows(const float *src, int64_t src_stride, float *dst, int64_t n_rows, int64_t row_len);

    // y[i] = w[i] x (matmul) for several weights that read the same x [n_tokens][cols]
    // (an attention's q, k and v), results the same as matmul's weight by weight. The base
    // implementation calls matmul per weight; the CPU backend runs the one-token products
    // of one quantized type as one product (x quantized once, one parallel region).
    // w and y must have the same length.
    virtual void matmuls_one_input(std::span<const WeightView> w, std::span<float *const> y, const float *x,
                                   int64_t n_tokens);
};

// begin_batch / end_batch for a scope.
class BackendBatch {
public:
    // enabled false: no batch (for a caller that batches only on some paths).
    explicit BackendBatch(Backend &b, bool enabled = true)
        : b_(b), uncaught_(std::uncaught_exceptions()), enabled_(enabled) {
        if (enabled_) b_.begin_batch();
    }
    // An op's error propagates from end_batch, unless another is already on its way.
    ~BackendBatch() noexcept(false) {
        if (!enabled_) return;
        if (std::uncaught_exceptions() == uncaught_) {
            b_.end_batch();
            return;
        }
        try {
            b_.end_batch();
        } catch (...) {
        }
    }
    BackendBatch(const BackendBatch &) = delete;
    BackendBatch &operator=(const BackendBatch &) = delete;

private:
    Backend &b_;
    int uncaught_;
    bool enabled_;
};

// Scratch floats of a step's ops: a vector that, when it goes, tells the backend that its
// memory no longer names a pending result (Backend::drop_results), so that a batch which
// outlives it never writes into freed memory. Its floats start uninitialised unless the
// backend asks otherwise (Backend::zeroed_scratch_vectors): ops write them before any read.
class BackendVector {
public:
    BackendVector(Backend &b, size_t n)
        : b_(b), n_(n), v_(b.zeroed_scratch_vectors() ? new float[n]() : new float[n]) {}
    ~BackendVector() { b_.drop_results(v_.get(), n_ * sizeof(float)); }
    BackendVector(const BackendVector &) = delete;
    BackendVector &operator=(const BackendVector &) = delete;
    float *data() { return v_.get(); }
    const float *data() const { return v_.get(); }
    size_t size() const { return n_; }

private:
    Backend &b_;
    size_t n_;
    std::unique_ptr<float[]> v_;
};

// Which backend and how it is set up (create_backend).
struct BackendOptions {
    int n_threads = 0;                  // CPU threads; 0 = all cores
    std::string device;                 // vulkan: device index or name substring; "" = MST_VULKAN_DEVICE or the best
    uint64_t gpu_expert_cache_bytes = 0;// vulkan: byte budget of the device's expert cache; 0 = a default
};

// ---- Argument checks (backends/op_checks.cpp) ----
// The preconditions of each op, the same whatever backend runs it: every backend calls
// the op's check first and adds only limits of its own. Each throws mst::Error naming the
// op and what is wrong: MST_ERR_UNSUPPORTED for a weight type the op does not take,
// MST_ERR_INVALID_ARGUMENT for a bad size, shape or null pointer (pointers are checked
// only when the call has work to do).

// matmul: sizes, weight type (F32, F16, BF16, Q8, Q4, MXFP4, PACKED_I4, PACKED_I8, the
// GGML legacy types), MXFP4 columns, packed integers' group size, GGML types' whole
// blocks per row, scales, pointers.
void check_matmul_params(const WeightView &w, const float *x, const float *y, int64_t n_tokens);
// matmul_xw: sizes, weight type (F32, F16, BF16), pointers.
void check_matmul_xw_params(const WeightView &w, const float *x, const float *y, int64_t n_tokens);
// matmul_transposed: sizes, weight type (F32, F16, BF16), pointers.
void check_matmul_transposed_params(const WeightView &w, const float *x, const float *y, int64_t n_tokens);
// matmul_block_fp8: weight and scale types, sizes and blocks, the scales' shape, pointers.
void check_matmul_block_fp8_params(const WeightView &w, const WeightView &scale_inv, int32_t block_rows,
                                   int32_t block_cols, const float *x, const float *y, int64_t n_tokens);
// rms_norm: sizes, a float weight of dim elements, pointers.
void check_rms_norm_params(const float *x, const WeightView &w, const float *y, int64_t n_rows, int64_t dim);
// rms_norm_gated: sizes, a float weight of dim elements, pointers.
void check_rms_norm_gated_params(const float *x, const float *gate, const WeightView &w, const float *y,
                                 int64_t n_rows, int64_t dim);
// l2_norm: sizes, eps >= 0, the pointer.
void check_l2_norm_params(const float *x, int64_t n_rows, int64_t dim, float eps);
// rope: sizes, an even rotary_dim within head_dim, pointers.
void check_rope_params(const float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
                       const int32_t *positions, const RopeParams &p);
// attention: the parameters (heads, dims, positions, window, kv_stride) and pointers.
void check_attention_params(const float *q, const float *k_cache, const float *v_cache, const float *out,
                            const AttentionParams &p);
// latent_attention: the parameters (heads, dims, positions) and pointers.
void check_latent_attention_params(const float *q, const float *cache, const float *out,
                                   const LatentAttentionParams &p);
// silu_mul: the size and pointers.
void check_silu_mul_params(const float *gate, const float *up, const float *out, int64_t n);
// sigmoid_mul: sizes (gate_dim divides dim) and pointers.
void check_sigmoid_mul_params(const float *x, const float *gate, int64_t n_rows, int64_t dim, int64_t gate_dim);
// clamped_swiglu: sizes and pointers.
void check_clamped_swiglu_params(const float *gate_up, const float *out, int64_t n_rows, int64_t n_inter);
// causal_conv1d: sizes, a float [channels][kernel >= 1] weight, pointers (state_out when kernel > 1).
void check_causal_conv1d_params(const float *x, const WeightView &w, const float *state_out, const float *y,
                                int64_t n_tokens, int64_t channels);
// gated_delta_rule: the shape (n_heads a multiple of n_k_heads) and pointers.
void check_gated_delta_rule_params(const float *q, const float *k, const float *v, const float *g, const float *beta,
                                   const float *state_out, const float *out, const Backend::DeltaRuleShape &s);
// add: the size and pointers.
void check_add_params(const float *x, const float *y, int64_t n);
// copy_rows: sizes (src_stride >= row_len) and pointers.
void check_copy_rows_params(const float *src, int64_t src_stride, const float *dst, int64_t n_rows, int64_t row_len);
// routed_swiglu: sizes, each expert's matrices and token uses, pointers; returns the uses of all experts.
int64_t check_routed_swiglu_params(const float *h, const float *out, int64_t n_tokens, int64_t hidden,
                                   const SwigluExpertUse *experts, size_t n_experts);
// matmuls_one_input: as many outputs as weights, one column count, then each matmul's checks.
void check_matmuls_one_input_params(std::span<const WeightView> w, std::span<float *const> y, const float *x,
                                    int64_t n_tokens);

// The registry: backends by name, chosen at run time.
struct BackendInfo {
    std::string name;
    std::string description;
};
std::vector<BackendInfo> available_backends();

// Create a backend by name ("cpu", "vulkan", or "auto": Vulkan when a GPU is usable,
// else the CPU; it logs its choice). n_threads 0 = all cores.
// Throws mst::Error(MST_ERR_BACKEND / MST_ERR_INVALID_ARGUMENT) naming what is missing.
// The CPU backend's SIMD path is the best the CPU has unless the environment variable
// MST_CPU_ISA names one (scalar | avx2 | avx512 | auto; see backends/cpu/cpu_isa.h).
std::unique_ptr<Backend> create_backend(const std::string &name, int n_threads);
std::unique_ptr<Backend> create_backend(const std::string &name, const BackendOptions &options);

}  // namespace mst
