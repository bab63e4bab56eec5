// The Vulkan backend: every Backend op as compute shaders on one device. Activations come
// and go in host memory (the Backend interface), so an op copies its inputs into
// host-visible memory, records its dispatches, submits once and waits; weights stay on
// the device (weight_residency.h), and so do KV caches that promise append-only use
// (AttentionParams::cache_id). routed_swiglu runs a whole group of experts in one
// submission. The ops are spread over op_*.cpp by family.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/backend.h"
#include "backends/device_expert_cache.h"
#include "backends/device_experts.h"
#include "backends/device_routing.h"
#include "backends/host_memory_import.h"
#include "backends/vulkan/command_stream.h"
#include "backends/vulkan/gemm_tuning.h"
#include "backends/vulkan/matvec_tuning.h"
#include "backends/vulkan/pipelines.h"
#include "backends/vulkan/vulkan_context.h"
#include "backends/vulkan/weight_residency.h"

namespace mst {

class VulkanBackend final : public Backend, public DeviceRouting, public DeviceExperts, public HostMemoryImport,
                            public DeviceExpertCache {
public:
    // Opens the device BackendOptions::device names (see VulkanContext); gpu_only skips
    // CPU implementations when ranking. Throws MST_ERR_BACKEND naming why.
    VulkanBackend(const BackendOptions &options, bool gpu_only);
    ~VulkanBackend() override;

    const char *name() const override { return "vulkan"; }
    int n_threads() const override { return 1; }
    const VulkanContext &context() const { return *ctx_; }
    const std::string &device_name() const { return ctx_->info().name; }
    const GpuExpertCacheStats &expert_cache_stats() const { return residency_->expert_stats(); }
    uint64_t submissions() const { return stream_->submissions(); }
    BackendCounters counters() const override;
    CommandStream &stream() { return *stream_; }  // for measurements (vulkan_bandwidth.h)
    double gpu_seconds() const { return stream_->gpu_seconds(); }

    void matmul(const WeightView &w, const float *x, float *y, int64_t n_tokens) override;
    void rms_norm(const float *x, const WeightView &w, float weight_offset, float eps, float *y, int64_t n_rows,
                  int64_t dim) override;
    void rope(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t *positions,
              const RopeParams &p) override;
    void attention(const float *q, const float *k_cache, const float *v_cache, float *out,
                   const AttentionParams &p) override;
    void silu_mul(const float *gate, const float *up, float *out, int64_t n) override;
    void matmul_xw(const WeightView &w, const float *x, float *y, int64_t n_tokens) override;
    void clamped_swiglu(const float *gate_up, float *out, int64_t n_rows, int64_t n_inter, float alpha,
                        float limit) override;
    void causal_conv1d(const float *x, const WeightView &w, const float *state_in, float *state_out, float *y,
                       int64_t n_tokens, int64_t channels, bool silu) override;
    void l2_norm(float *x, int64_t n_rows, int64_t dim, float eps) override;
    void gated_delta_rule(const float *q, const float *k, const float *v, const float *g, const float *beta,
                          const float *state_in, float *state_out, float *out, const DeltaRuleShape &shape) override;
    void rms_norm_gated(const float *x, const float *gate, const WeightView &w, float eps, float *y, int64_t n_rows,
                        int64_t dim) override;
    void sigmoid_mul(float *x, const float *gate, int64_t n_rows, int64_t dim, int64_t gate_dim) override;
    void matmul_transposed(const WeightView &w, const float *x, float *y, int64_t n_tokens) override;
    void matmul_block_fp8(const WeightView &w, const WeightView &scale_inv, int32_t block_rows, int32_t block_cols,
                          const float *x, float *y, int64_t n_tokens) override;
    void latent_attention(const float *q, const float *cache, float *out, const LatentAttentionParams &p) override;
    void routed_swiglu(const float *h, float *out, int64_t n_tokens, int64_t hidden, const SwigluExpertUse *experts,
                       size_t n_experts) override;
    void begin_batch() override;
    void end_batch() override;
    void sync() override;
    void drop_results(const void *ptr, size_t bytes) override;
    void sync_reads(std::span<const HostSpan> reads) override;
    void add(float *x, const float *y, int64_t n) override;
    void copy_rows(const float *src, int64_t src_stride, float *dst, int64_t n_rows, int64_t row_len) override;
    void matmuls_one_input(std::span<const WeightView> w, std::span<float *const> y, const float *x,
                           int64_t n_tokens) override;
    void softmax_topk(const float *logits, int64_t n_tokens, int32_t n_experts, int32_t k, bool renormalize,
                      int32_t *ids, float *weights) override;
    // DeviceExperts (op_experts_by_id.cpp): MST_VULKAN_EXPERTS_BY_ID=0 declines every
    // layer, so the host path (a wait per layer) runs in the same build, to compare.
    bool make_experts_resident(const SwigluExpertSet &set) override;
    bool experts_resident(int64_t layer, int32_t n_experts) override;
    void routed_swiglu_by_id(int64_t layer, const float *h, float *out, int64_t hidden, const int32_t *ids,
                             const float *weights, int32_t k) override;
    // routed_swiglu_by_id's sum added into x in the same dispatch; false (nothing
    // recorded) with the MoE fusion off.
    bool routed_swiglu_by_id_add(int64_t layer, const float *h, float *x, int64_t hidden, const int32_t *ids,
                                 const float *weights, int32_t k) override;
    void set_experts_by_id(bool on);
    // The MoE half of a decode layer in fewer dispatches (docs/gpu_decode_kernels.md, same
    // title): softmax_topk by rank, gate+up+SwiGLU in one id dispatch, the
    // down products with the combine (and the residual add) in another. Off: main's
    // commands before it (tests and benchmarks; MST_VULKAN_MOE_FUSION=0|1 at creation).
    // On by default.
    void set_moe_fusion(bool on) { moe_fusion_ = on; }
    bool moe_fusion() const { return moe_fusion_; }
    // With the MoE fusion on, where the down products and their sum go: off (the default,
    // measured faster on an H100) the down products on matvec_id's grid, then combine_id
    // summing them (and adding into the residual): two dispatches; on, both in one dispatch
    // (shaders/matvec_id_combine.comp). The same bits either way.
    // MST_VULKAN_COMBINE_IN_DOWN=0|1 at creation.
    void set_combine_in_down(bool on) { combine_in_down_ = on; }
    bool combine_in_down() const { return combine_in_down_; }
    // routed_swiglu_by_id calls recorded so far (tests and benchmarks).
    uint64_t experts_by_id_calls() const { return experts_by_id_calls_; }
    // A batch's tokens by id (op_experts_device_grouped.cpp): the grouping by expert and the
    // grouped GEMMs' tile tables built on the device from the router's ids, no wait.
    // MST_VULKAN_DEVICE_GROUPING=0 (or set_device_grouping(false)) declines every batch, so
    // the host grouping (a wait per layer for the ids) runs in the same build, to compare.
    bool batch_by_id(int64_t layer, int32_t n_experts, int64_t n_tokens) override;
    void routed_swiglu_batch_by_id(int64_t layer, const float *h, float *out, int64_t n_tokens, int64_t hidden,
                                   const int32_t *ids, const float *weights, int32_t k) override;
    void set_device_grouping(bool on);
    uint64_t batch_by_id_calls() const { return batch_by_id_calls_; }

    // The host's side of a prefill (prefill_host.cpp; docs/gpu_prefill.md, "The host's side
    // of a 512-token prefill"): BackendVector's floats left uninitialised (the device keeps
    // the results, so their pages are never touched) and the results a wait delivers to host
    // memory copied by several threads. MST_VULKAN_PREFILL_HOST=0 (or set_prefill_host(false))
    // zeroes the vectors and copies on one thread, as before, to compare. Results are the same.
    bool zeroed_scratch_vectors() const override { return !prefill_host_; }
    void set_prefill_host(bool on);
    bool prefill_host() const { return prefill_host_; }

    // Host memory holding weights the backend uploads (a host-side expert store): imported
    // (VK_EXT_external_memory_host, host_import.h) so that the device copies a missed
    // expert from it directly, without the staging ring's memcpy. The memory must stay
    // allocated until release_host_memory(ptr) or the backend's end; best page-aligned
    // (the pages around it are imported too). False, with `why`, when the device cannot
    // import it (no extension, MST_VULKAN_HOST_IMPORT=0, the driver refused): uploads from
    // it then take the staging ring, so the caller needs no other path.
    bool import_host_memory(const void *ptr, uint64_t bytes, std::string &why) override;
    // Outside a batch (MST_ERR_INVALID_ARGUMENT inside one); false when ptr imported nothing.
    bool release_host_memory(const void *ptr) override;
    // The stream's completed waits (CommandStream::completed_waits): lock-free, for the
    // I/O threads that reuse a host expert slab's slots.
    uint64_t device_reads_epoch() const override { return stream_->completed_waits(); }

    // DeviceExpertCache (op_expert_prefetch.cpp): the GPU expert cache's statistics with the
    // stream's upload bytes by way, and guessed experts copied into it ahead of need.
    // MST_VULKAN_EXPERT_PREFETCH=0 (or set_expert_prefetch(false)) copies nothing ahead, so
    // each layer copies its own misses after its router's wait, as before (to compare).
    DeviceExpertCacheStats device_expert_cache_stats() const override;
    bool expert_prefetch_enabled() const override { return expert_prefetch_; }
    size_t prefetch_experts(std::span<const WeightView> parts) override;
    void set_expert_prefetch(bool on);
    // A streamed layer's copies and products overlapped (op_experts.cpp: each missed
    // expert's copies submitted at its lookup, the hits' products first without a wait,
    // each miss's products waiting for its own copies). Off by default: on an H100 it moved
    // streamed decode by nothing beyond the noise (the submissions' host work took what the
    // waits gave back; bench/README.md, 2026-12-07 08:16 UTC). MST_VULKAN_STREAM_OVERLAP=1
    // (or set_stream_overlap(true)) turns it on; off, the products wait for all of the
    // layer's copies.
    bool stream_overlap() const { return stream_overlap_; }
    void set_stream_overlap(bool on) {
        const std::lock_guard<std::recursive_mutex> lock(mutex_);
        stream_overlap_ = on;
    }
    // Missed experts per lane batch and per command buffer of their products when the
    // overlap is on: 1 (the default) gives each miss its own; more trade overlap for fewer
    // submissions (MST_VULKAN_STREAM_GROUP=N; 8 or more: every miss in one, the hits still first).
    uint32_t stream_group() const { return stream_group_; }
    void set_stream_group(uint32_t misses);

    // Record y = W x (any matmul weight type) into the stream without submitting; x, y
    // device-visible slices. FP8 needs the scales and block shape.
    void record_matmul(const WeightView &w, const DeviceWeight &dw, const BufferSlice &x, const BufferSlice &y,
                       int64_t n_tokens, const DeviceWeight *fp8_scales = nullptr, int32_t block_rows = 0,
                       int32_t block_cols = 0);
    // Record out = silu(a) * b over n elements.
    void record_silu_mul(const BufferSlice &a, const BufferSlice &b, const BufferSlice &out, int64_t n);

    // Products of a batch of tokens (prefill) as tiled GEMMs (shaders/gemm.comp, op_gemm.cpp)
    // instead of the matrix-vector kernel. `automatic` takes the cooperative-matrix GEMM where
    // the device has it, else the portable one; MST_VULKAN_GEMM=auto|portable|off sets the
    // kernel at creation.
    enum class GemmKernel { automatic, portable, coopmat, off };
    // Which kernel products of at least min_tokens tokens take (tests and benchmarks); false,
    // with `why`, when the device cannot run it (coopmat without the extension).
    bool set_gemm(GemmKernel kernel, int64_t min_tokens, std::string &why);
    // The tiling of the tuned GEMM (gemm_tuning.h, shaders/gemm_tuned.comp) or main's kernel
    // (GemmTuning{}, the default); MST_VULKAN_COOP_TUNING sets it at creation. The tuned kernel
    // takes cooperative matrices where the GEMM kernel does, float products elsewhere. False,
    // with `why`, for a tiling the shader or the device cannot run (tests and benchmarks).
    // set_gemm_tuning gives the dense and the grouped (routed experts') products the same
    // one; set_gemm_tunings one each (MST_VULKAN_COOP_TUNING=DENSE/GROUPED), so that each kind
    // takes the tiling that suits its tokens (all of a prompt's; an expert's ~32).
    bool set_gemm_tuning(const GemmTuning &tuning, std::string &why);
    bool set_gemm_tunings(const GemmTuning &dense, const GemmTuning &grouped, std::string &why);
    const GemmTuning &gemm_tuning() const { return gemm_tuning_; }  // the dense products'
    const GemmTuning &gemm_tuning_grouped() const { return gemm_tuning_grouped_; }
    // The tiling products of `type`'s weights take (grouped or dense, with SwiGLU's up tile
    // or not): the kind's tuning where that variant fits the device's shared memory, else
    // main's kernel (a tuning is accepted when one type's variant fits: q4's, staged as one
    // f16 under split, may hold a tile that f32's, split twice, cannot).
    const GemmTuning &gemm_tuning_for(DType type, bool grouped, bool swiglu) const;
    // How the f16-staged GEMMs (cooperative matrices; the tuned tiling everywhere) round what
    // they stage (gemm_precision.h): split (the default) or f16; MST_VULKAN_COOPMAT_PRECISION
    // sets it at creation. False, with `why`, when the tuned tiling in use would not fit the
    // device's shared memory with it (tests and benchmarks).
    bool set_coop_precision(CoopPrecision precision, std::string &why);
    CoopPrecision coop_precision() const { return coop_precision_; }
    // GEMM dispatches recorded so far (tests check that a product took the GEMM).
    uint64_t gemm_dispatches() const { return gemm_dispatches_; }
    // Blocked prefill attention dispatches so far (shaders/attention_blocked.comp): queries
    // of min_tokens or more take it unless the kernel is `off`.
    uint64_t blocked_attention_dispatches() const { return blocked_attention_dispatches_; }
    // Keys a block of the blocked prefill attention: 32, or 16 where the device's shared
    // memory is too small for 32, 0 where not even that fits (attention.comp then).
    uint32_t blocked_attention_keys_per_block() const;
    // The prefill attention on cooperative matrices (shaders/attention_flash.comp,
    // op_attention_flash.cpp), which takes the blocked kernel's calls where it covers them:
    // `automatic` where the device has cooperative matrices, `emulated` its float build of
    // the same tiling on any device (tests), `off` the blocked kernel everywhere;
    // MST_VULKAN_FLASH_ATTENTION=auto|emulated|off sets it at creation.
    enum class FlashAttention { automatic, emulated, off };
    void set_flash_attention(FlashAttention mode) { flash_attention_ = mode; }
    FlashAttention flash_attention() const { return flash_attention_; }
    uint64_t flash_attention_dispatches() const { return flash_attention_dispatches_; }
    // Shared memory bytes of attention_flash.comp under a precision and row padding (tests).
    static uint32_t flash_attention_shared_bytes(CoopPrecision precision, bool pad);
    // Split decode attention calls so far (shaders/attention_split*.comp: two dispatches, or
    // one with the attention combine fusion): steps of a few queries against several blocks
    // of positions (MST_VULKAN_SPLIT_ATTENTION: 0 never).
    uint64_t split_attention_dispatches() const { return split_attention_dispatches_; }
    // Split decode attention from min_keys positions of context (at least two blocks); 0:
    // never (tests and benchmarks; MST_VULKAN_SPLIT_ATTENTION sets it at creation).
    void set_split_attention(uint32_t min_keys);
    // The split's first pass with a subgroup per key row (attention_split_rows.comp, where
    // the device has subgroup arithmetic and rows are whole vec4s); off: attention_split.comp
    // (tests and benchmarks; MST_VULKAN_SPLIT_ROWS=0|1 sets it at creation). On by default.
    void set_split_rows(bool on);
    uint64_t split_rows_dispatches() const { return split_rows_dispatches_; }
    // Keys a block of attention_split_rows.comp: 32 (the default, every split shader's), 64
    // or 128: fewer blocks to merge and fewer workgroups (tests and benchmarks;
    // MST_VULKAN_SPLIT_BLOCK=32|64|128 at creation; docs/gpu_decode_kernels.md, "The
    // decode attention's latency"). The other first passes keep 32.
    void set_split_block(uint32_t keys);
    uint32_t split_block() const { return split_block_; }
    // The split's merge with every block's loads issued at once, no shared memory and no
    // barrier, up to 32 blocks (attention_split_combine.glsl's split_combine_oneshot), in
    // attention_split_rows_fused; the same bits (MST_VULKAN_SPLIT_MERGE_ONESHOT=0|1 at
    // creation; off by default until measured).
    void set_split_merge_oneshot(bool on);
    bool split_merge_oneshot() const { return split_merge_oneshot_; }
    // The rows' first pass as a workgroup per (KV head, query, block of 32) serving the
    // group's query heads (attention_split_gqa.comp: rows read once a group, its heads
    // merged a subgroup each), where heads are up to 128 wide and groups up to 8; the same
    // bits (MST_VULKAN_SPLIT_GQA=0|1 at creation; off by default until measured).
    void set_split_gqa(bool on);
    bool split_gqa() const { return split_gqa_; }
    uint64_t split_gqa_dispatches() const { return split_gqa_dispatches_; }
    // The attention combine fusion (docs/gpu_decode_kernels.md, "The split's combine in its
    // first pass"; op_attention_split.cpp): the split's last workgroup of each (head, query)
    // merges the blocks (attention_split*_fused), in place of attention_split_combine.comp's
    // dispatch and its barrier level. Off: the two dispatches
    // (MST_VULKAN_ATTENTION_COMBINE_FUSION=0|1 at creation). On by default; the same bits either way.
    void set_attention_combine_fusion(bool on);
    bool attention_combine_fusion() const { return attention_combine_fusion_; }
    uint64_t fused_attention_combines() const { return fused_attention_combines_; }  // split calls of one dispatch
    // Norms of rows of whole vec4s up to 4096 wide through norm_vec4.comp; off: norm.comp
    // (tests and benchmarks; MST_VULKAN_NORM_VEC4=0 at creation). On by default.
    void set_norm_vec4(bool on) { use_norm_vec4_ = on; }
    uint64_t norm_vec4_dispatches() const { return norm_vec4_dispatches_; }
    // Decode fusions (docs/gpu_decode_kernels.md, "Fewer dispatches per layer"): copy_rows
    // of contiguous rows records no command (its result is the source's device slice), and
    // rope's cos/sin table is copied to the device once per batch, not per call. Off: a
    // dispatch per copy_rows and a table copy per rope, as before (tests and benchmarks;
    // MST_VULKAN_DECODE_FUSION=0|1 at creation). On by default.
    void set_decode_fusion(bool on) { decode_fusion_ = on; }
    bool decode_fusion() const { return decode_fusion_; }
    uint64_t copy_rows_aliased() const { return copy_rows_aliased_; }  // copy_rows that recorded no command
    // Attention fusions (docs/gpu_decode_kernels.md, "The attention half in fewer levels";
    // op_fusion.cpp): inside a batch, rms_norm and one token's products are recorded late,
    // and the op that reads the result folds them into its own dispatch: a norm into the
    // products that read it (matvec_fused.comp) or into rope (norm_rope.comp), a product
    // into the residual add after it. Off: each op records its own commands, as before
    // (tests and benchmarks; MST_VULKAN_ATTENTION_FUSION=0|1 at creation). On by default.
    void set_attention_fusion(bool on);
    bool attention_fusion() const { return attention_fusion_; }
    uint64_t fused_norm_products() const { return fused_norm_products_; }   // norm + product dispatches
    uint64_t fused_norm_ropes() const { return fused_norm_ropes_; }         // norm + rope dispatches
    uint64_t fused_residual_products() const { return fused_residual_products_; }  // product + add dispatches
    // The KV append fusion (docs/gpu_decode_kernels.md, "The KV append and the router's
    // top-k without levels of their own"; op_kv_append.cpp): k's norm_rope of a decode
    // token, deferred, writes its rows into the attention's device KV mirror and copies the
    // v rows beside them, in place of the mirror's two copy_table commands and their level.
    // Off: the attention copies them (MST_VULKAN_KV_APPEND_FUSION=0|1 at creation). On by
    // default; the same bits either way.
    void set_kv_append_fusion(bool on);
    bool kv_append_fusion() const { return kv_append_fusion_; }
    uint64_t fused_kv_appends() const { return fused_kv_appends_; }  // appends that rode on k's norm_rope
    // The router-top-k fusion (same section; op_routing.cpp): one token's router product
    // (its norm folded in) and softmax_topk as one dispatch, the product's last workgroup to
    // finish ranking the experts. Off: two dispatches in two levels
    // (MST_VULKAN_ROUTER_TOPK_FUSION=0|1 at creation). On by default; the same bits either way.
    void set_router_topk_fusion(bool on);
    bool router_topk_fusion() const { return router_topk_fusion_; }
    uint64_t fused_router_topks() const { return fused_router_topks_; }  // product + top-k dispatches
    // Whether the settings let a router product and its top-k fuse (the fusion, the attention
    // fusion that defers the norm, matvec.comp, norm_vec4.comp, the dense shape of 128
    // invocations the ranking runs on); else false with *why (when not null) naming what
    // stops it. The op checks the rest (one token in a batch, at most kTopkProductRows rows,
    // a type and width matvec.comp takes). Tests ask it before counting fused dispatches.
    bool router_topk_fusion_fits(std::string *why) const;
    static constexpr int64_t kTopkProductRows = 1024;
    // The fused router's loads ahead (docs/gpu_decode_kernels.md, "The router's chain of
    // round trips"; MST_VULKAN_ROUTER_AHEAD=0|1 at creation, on by default): its workgroups
    // load their first weights (float types) with x and the norm weight, before the norm's
    // sum, and normalise x into shared memory from those registers. Off: the product loads
    // weights and x per unit after the norm, as before. The same bits either way.
    void set_router_ahead(bool on);
    bool router_ahead() const { return router_ahead_; }
    // The q/k/v fusion (docs/gpu_decode_kernels.md, "Independent products in one dispatch";
    // op_fusion.cpp): with the attention fusion, three one-token products of one normed x
    // (q, k and v), of one type, as one matvec_norm_qkv dispatch over all their rows instead
    // of a matvec_norm dispatch each (k's and v's small grids beside q's); and with the KV
    // append fusion, q's norm_rope of a decode step in k's norm_rope_kv dispatch
    // (op_kv_append.cpp). Off: a dispatch each (MST_VULKAN_QKV_FUSION=0|1 at creation). On
    // by default; the same bits either way.
    void set_qkv_fusion(bool on);
    bool qkv_fusion() const { return qkv_fusion_; }
    uint64_t fused_qkv_products() const { return fused_qkv_products_; }  // matvec_norm_qkv dispatches
    uint64_t fused_qk_norm_ropes() const { return fused_qk_norm_ropes_; }  // norm_rope_qk_kv dispatches
    // The L2 warm-up (docs/gpu_decode_kernels.md, "Weights pulled into L2 beside a
    // latency-bound level"; op_l2_warm.cpp): a small l2_warm dispatch, recorded into the
    // level open at the time and adding no barrier (CommandStream::joins_level), reads the
    // weights a later level's product reads, so that they come from the GPU's L2 then.
    //   kWarmO: a one-token product deferred for the residual add after it (o) has its weights
    //     warmed in the level open when it is deferred (the attention's);
    //   kWarmQkv: the end of a layer's experts (routed_swiglu_by_id, the combine's level)
    //     warms the q/k/v weights of the fused q/k/v dispatch that came after that layer the
    //     last time within one wait (learned at the first decode step, warmed from the second).
    // MST_VULKAN_L2_WARM=0 (default), 1 (both), o or qkv at creation; MST_VULKAN_L2_WARM_GROUPS=N
    // the warm's workgroups (default 64). The warm writes nothing anyone reads: the same bits.
    static constexpr uint32_t kWarmO = 1, kWarmQkv = 2;
    // Ranges warmed: from 2 MiB (a router's 0.5 MB is read in one round trip's time anyway)
    // to 32 MiB (the products a layer reads; not the head, which would only evict them).
    static constexpr uint64_t kWarmMinBytes = uint64_t(2) << 20, kWarmMaxBytes = uint64_t(32) << 20;
    // `min_bytes`: the smallest range warmed (kWarmMinBytes; tests lower it for a small model).
    void set_l2_warm(uint32_t which, uint32_t groups = 64, uint64_t min_bytes = kWarmMinBytes);
    uint32_t l2_warm() const { return l2_warm_; }
    uint32_t l2_warm_groups() const { return l2_warm_groups_; }
    static const char *l2_warm_name(uint32_t which);  // "off", "o", "qkv", "o+qkv"
    uint64_t l2_warm_dispatches() const { return l2_warm_dispatches_; }
    // The longest product (rows) a norm is folded into: past it every workgroup re-reading
    // x would cost more than the norm's own dispatch (the head's 152k rows).
    static constexpr int64_t kNormProductRows = 16384;
    uint64_t rope_table_copies() const { return rope_table_copies_; }  // rope tables copied to the device
    // rope cos/sin tables computed so far (op_norm_rope.cpp keeps the last one and reuses it
    // while positions and frequencies match; tests check the reuse).
    uint64_t rope_tables_built() const { return rope_tables_built_; }
    // One token's dense products (VulkanBackend::matmul) through shaders/matvec.comp, which
    // keeps several loads per lane in flight (op_matvec.cpp); off: matmul.comp, as before
    // (tests and benchmarks; MST_VULKAN_MATVEC=0|1 sets it at creation). On by default.
    void set_matvec(bool on);
    // matvec.comp dispatches recorded so far (tests check that a product took it).
    uint64_t matvec_dispatches() const { return matvec_dispatches_; }
    // The shapes (LANES x ROWS) of the one-token product kernels per family (matvec_tuning.h);
    // MST_VULKAN_MATVEC_TUNING sets them at creation. False, with `why`, for a shape the
    // shaders or the device cannot run (the tuning stays as it was). A LANES that is a
    // multiple of the subgroup size sums a row with subgroupAdd (and, across the row's
    // subgroups, in shared memory); a smaller one takes the shared-memory tree variant.
    bool set_matvec_tuning(const MatvecTuning &tuning, std::string &why);
    const MatvecTuning &matvec_tuning() const { return matvec_tuning_; }
    // This device's default shapes (today's: LANES the subgroup size, 128 invocations).
    const MatvecTuning &default_matvec_tuning() const { return default_matvec_tuning_; }
    // Q4 units of one whole 32-weight block a lane (its scale word and its four code words
    // read once; MST_VULKAN_Q4_BLOCK=1) or of a quarter block, the scale word read again per
    // quarter (0, the default: on an H100 the quarter-block unit was 1.67x faster in the
    // experts' gate+up and 1.74x in their down products, bench/README.md, 2026-12-07 08:16
    // UTC). Changes the q4 products' summation order, the same in every kernel that includes
    // matvec_unit.glsl.
    void set_q4_block(bool on);
    bool q4_block() const { return q4_block_; }
    // The norm-folded products (matvec_fused.comp's norm variants) normalise x once per
    // workgroup into shared memory and read it from there (MST_VULKAN_NORM_X_SHARED=1), or
    // normalise each element where a lane reads it (0, the default). The same bits either way.
    void set_norm_x_shared(bool on);
    bool norm_x_shared() const { return norm_x_shared_; }
    // A batch's routed experts as grouped GEMMs (op_experts_grouped.cpp): one dispatch per
    // product for every group of experts whose weights share a buffer, instead of one per
    // expert; off: a GEMM (or matrix-vector product) per expert, as before (tests and
    // benchmarks; MST_VULKAN_GROUPED_EXPERTS=0|1 sets it at creation). On by default.
    void set_grouped_experts(bool on) { grouped_experts_ = on; }
    // Grouped gate and up products in one pass with SwiGLU (on, the default), where each
    // expert's gate and up weights share a buffer; off: a dispatch each and a silu_mul
    // (tests and benchmarks; MST_VULKAN_FUSED_SWIGLU=0|1 at creation).
    void set_fused_swiglu(bool on) { fused_swiglu_ = on; }
    uint64_t fused_swiglu_dispatches() const { return fused_swiglu_dispatches_; }
    // Dense GEMMs with (on, the default) or without the fetch of the next step during a
    // step's products (tests and benchmarks; MST_VULKAN_GEMM_PREFETCH=0|1 at creation).
    void set_gemm_prefetch(bool on) { gemm_prefetch_ = on; }
    // Grouped expert GEMM dispatches recorded so far (tests check that a batch took them).
    uint64_t grouped_expert_dispatches() const { return grouped_expert_dispatches_; }

private:
    // y[t][c] = sum_r x[t][r] w[r][c]: matmul_xw and matmul_transposed, their arguments checked.
    void xw_product(const char *op, const WeightView &w, const float *x, float *y, int64_t n_tokens);
    // rms_norm (mode 0), rms_norm_gated (1), l2_norm (2): shaders/norm.comp.
    void norm(int mode, const float *x, const float *gate, const WeightView *w, float offset, float eps, float *y,
              int64_t n_rows, int64_t dim);
    // Attention of both kinds (shaders/attention.comp); k, v, sinks already on the device.
    struct AttentionShape {
        uint32_t n_tokens, n_heads, group, head_dim, v_dim, pos0, k_head, v_head, k_row, v_row;
        float scale;
        uint32_t window;
        bool sinks;
    };
    void record_attention(const AttentionShape &s, const BufferSlice &q, const BufferSlice &k, const BufferSlice &v,
                          const BufferSlice &sinks, const BufferSlice &out);
    void submit();
    // A 16-byte device buffer bound in the slots an op leaves unused (a pipeline's every
    // binding must name a buffer; the shader does not read it then).
    BufferSlice unused_binding() const { return whole(*unused_binding_); }
    // The (x groups, y groups) covering n work items of `per_group` each (x <= 65535).
    static void groups_for(int64_t n, uint32_t per_group, uint32_t &gx, uint32_t &gy);

    struct KvMirror {
        VulkanBuffer k, v;
        int64_t capacity = 0;  // positions per kv head
        int64_t valid = 0;     // positions [0, valid) hold the host's values
        uint64_t last_use = 0;
        uint64_t bytes = 0;
    };
    // The device copy of the caches for p, valid for positions < pos0 + n_tokens.
    KvMirror &kv_mirror(const float *k_cache, const float *v_cache, const AttentionParams &p);

    // Sessions of one model share its backend from their own threads: every op holds
    // this, and a batch holds it from begin_batch to end_batch.
    std::recursive_mutex mutex_;
    std::unique_ptr<VulkanContext> ctx_;
    std::unique_ptr<HostImports> host_imports_;  // after the stream (it reads them) is gone
    std::unique_ptr<PipelineCache> pipelines_;
    std::unique_ptr<CommandStream> stream_;
    std::unique_ptr<WeightResidency> residency_;
    std::unique_ptr<VulkanBuffer> unused_binding_;
    std::unordered_map<uint64_t, KvMirror> kv_;
    uint64_t kv_bytes_ = 0, kv_budget_ = 0, kv_clock_ = 0;
    const VulkanPipeline *matmul_pipelines_[32] = {};  // by DType
    bool use_subgroup_ = false;
    uint32_t lanes_ = 32, rows_per_group_ = 4;
    // Records y = W x as a GEMM when the settings above say so; false when it did not.
    bool record_gemm(const WeightView &w, const DeviceWeight &dw, const BufferSlice &x, const BufferSlice &y,
                     int64_t n_tokens);
    // MST_VULKAN_GEMM, _GEMM_PREFETCH, _COOP_TUNING, _COOPMAT_PRECISION; throws naming a bad value
    void configure_gemm_from_environment();
    // The GEMM variant (gemm.comp) for weights of type t under the kernel chosen, plain or
    // grouped over experts; empty when products of t keep the matrix-vector kernels.
    std::string gemm_shader(DType t, bool grouped, bool swiglu = false) const;
    // Its pipeline, with the precision's specialization constant and the tuning's when tuned.
    const VulkanPipeline &gemm_pipeline(const std::string &shader, uint32_t n_bindings, const GemmTuning &tuning);
    GemmKernel gemm_kernel_ = GemmKernel::automatic;
    // Main's kernel unless MST_VULKAN_COOP_TUNING or set_gemm_tuning(s) says otherwise: the
    // dense products' tiling and the grouped ones'.
    GemmTuning gemm_tuning_, gemm_tuning_grouped_;
    CoopPrecision coop_precision_ = CoopPrecision::split;  // MST_VULKAN_COOPMAT_PRECISION
    // Whether `tuning`'s largest variant (with SwiGLU's up tile when `swiglu`: the grouped
    // products', under `precision`) fits the device; false with `why` naming the bytes.
    bool tuning_fits(const GemmTuning &tuning, CoopPrecision precision, bool swiglu, std::string &why) const;
    // Dense GEMMs fetch a step's tiles during the previous step's products; off
    // (MST_VULKAN_GEMM_PREFETCH=0, to compare): gemm_serial_*, each fetched when it begins.
    bool gemm_prefetch_ = true;
    int64_t gemm_min_tokens_ = 0;  // set with the kernel at creation
    uint64_t gemm_dispatches_ = 0;
    // Workgroups along the queries when attention of shape s takes the blocked prefill
    // kernel (op_attention_prefill.cpp), else 0.
    uint32_t blocked_attention_query_blocks(const AttentionShape &s) const;
    uint64_t blocked_attention_dispatches_ = 0;
    // Queries a workgroup when attention of shape s takes attention_flash.comp, else 0; its
    // recording, and MST_VULKAN_FLASH_ATTENTION (throws naming a bad value).
    uint32_t flash_attention_queries(const AttentionShape &s) const;
    void record_flash_attention(const AttentionShape &s, uint32_t queries, const BufferSlice &q, const BufferSlice &k,
                                const BufferSlice &v, const BufferSlice &sinks, const BufferSlice &out);
    void configure_flash_attention_from_environment();
    FlashAttention flash_attention_ = FlashAttention::automatic;
    uint64_t flash_attention_dispatches_ = 0;
    // Blocks of positions when attention of shape s takes the split decode kernels
    // (op_attention_split.cpp), else 0; and their recording.
    uint32_t split_attention_blocks(const AttentionShape &s) const;
    void record_split_attention(const AttentionShape &s, uint32_t n_blocks, const BufferSlice &q, const BufferSlice &k,
                                const BufferSlice &v, const BufferSlice &sinks, const BufferSlice &out);
    void configure_split_attention_from_environment();  // MST_VULKAN_SPLIT_ATTENTION; throws naming a bad value
    uint32_t split_attention_min_keys_ = 0;  // keys the last query sees from which to split; 0: never
    uint64_t split_attention_dispatches_ = 0;
    bool split_rows_ = true;
    uint64_t split_rows_dispatches_ = 0;
    uint32_t split_block_ = 32;
    bool split_merge_oneshot_ = false;
    bool split_gqa_ = false;
    uint64_t split_gqa_dispatches_ = 0;
    bool attention_combine_fusion_ = true;
    uint64_t fused_attention_combines_ = 0;
    // The fused first pass's counts of finished blocks, one per (query, head) of the largest
    // call so far, 0 between dispatches (each (head, query)'s last workgroup resets its own).
    std::unique_ptr<VulkanBuffer> split_counter_;
    // Whole, zeroed once per buffer, so that replayed commands bind the same slice.
    BufferSlice split_counter(uint64_t slots);
    // Records y = W x for one token through matvec.comp; false where it does not apply.
    bool record_matvec(const WeightView &w, const DeviceWeight &dw, const BufferSlice &x, const BufferSlice &y,
                       int64_t n_tokens);
    void configure_matvec_from_environment();  // MST_VULKAN_MATVEC; throws naming a bad value
    const VulkanPipeline *matvec_pipelines_[32] = {};  // by DType
    bool use_matvec_ = true;
    MatvecTuning matvec_tuning_, default_matvec_tuning_;
    bool q4_block_ = false;
    bool norm_x_shared_ = false;
    bool router_ahead_ = true;
    // A one-token product kernel's pipeline at shape s: the _sg variant where LANES is a
    // whole number of subgroups, specialization constants LANES, ROWS, `extra` (constant 2:
    // matvec_id_combine.comp's EXPERTS, unused by the others), Q4_BLOCK (constant 3),
    // PER_LANE (constant 4), STAGE_X (constant 5, matvec_fused.comp's norm variants') and
    // AHEAD (constant 6, its router variants').
    const VulkanPipeline &matvec_family_pipeline(const std::string &shader, uint32_t n_bindings, const MatvecShape &s,
                                                 uint32_t extra = 1);
    // The workgroups of a dense one-token product (or fused form) of `rows` rows at the
    // dense shape: ROWS x PER_LANE rows each.
    uint64_t dense_groups(int64_t rows) const {
        const uint64_t per = matvec_tuning_.dense.rows_per_group();
        return (uint64_t(rows) + per - 1) / per;
    }
    void forget_matvec_pipelines();  // after a change of shape or of the q4 unit
    bool use_norm_vec4_ = true;
    uint64_t norm_vec4_dispatches_ = 0;
    // rope's last cos/sin table and what it was computed from (op_norm_rope.cpp).
    struct RopeTable {
        std::vector<int32_t> positions;
        std::vector<float> inv_freq;
        float attention_factor = 0.0f;
        std::vector<float> cos_sin;
    };
    RopeTable rope_table_;
    uint64_t rope_tables_built_ = 0;
    // The device copy of rope_table_ and when it was made (scratch: valid until the stream's
    // next scratch reset, and for the table built then).
    BufferSlice rope_table_device_{};
    uint64_t rope_table_device_resets_ = ~uint64_t(0), rope_table_device_built_ = 0;
    uint64_t rope_table_copies_ = 0;
    // The attention fusions' deferred work (op_fusion.cpp): a norm (norm_vec4.comp's rows)
    // or a one-token product (matvec.comp) whose command is not recorded yet. Its inputs are
    // device slices taken when it was called and its result is registered at its host
    // address, so later ops read it as any pending result; the stream records it before any
    // other command (CommandStream::set_deferred) unless a consumer folds it in first.
    // norm_rope: a norm whose rope folded it in (norm_rope.comp) and, one token's, waits in
    // turn for the attention's KV append to take it (op_kv_append.cpp).
    struct DeferredOp {
        enum class Kind { norm, matvec, norm_rope, norm_matvec } kind;
        const float *result;  // host address of the result
        BufferSlice x, weight, y;
        int64_t rows = 0, cols = 0;  // norm, norm_rope: n_rows x dim; matvec: the weight's shape
        float offset = 0, eps = 0;   // norm, norm_rope
        DType dtype = DType::F32;    // matvec only
        BufferSlice table;           // norm_rope: the cos/sin table
        uint32_t n_heads = 0, half_dim = 0, interleaved = 0;  // norm_rope
        // norm_matvec (a router product with its norm folded in, waiting for the top-k,
        // op_routing.cpp): x, weight, y, offset and eps are the norm's (y its result h, at
        // norm_result), `matrix` the product's weight, `product` its rows (at result).
        BufferSlice matrix, product;
        const float *norm_result = nullptr;
    };
    std::vector<DeferredOp> deferred_;
    bool deferred_held_ = false;  // while a consumer records ahead of the deferred ops
    // Holds the deferred ops back while its scope records a command that writes only fresh
    // scratch from host memory (a table or an input copied to the device): it commutes
    // with them, so a consumer after it may still fold them in.
    struct DeferredHold {
        VulkanBackend &b;
        bool was;
        DeferredHold(VulkanBackend &backend, bool on) : b(backend), was(backend.deferred_held_) {
            b.deferred_held_ = was || on;
        }
        ~DeferredHold() { b.deferred_held_ = was; }
        DeferredHold(const DeferredHold &) = delete;
        DeferredHold &operator=(const DeferredHold &) = delete;
    };
    void record_deferred_ops();   // all of them, in call order (the stream's hook)
    void record_deferred_op(const DeferredOp &op);
    // The deferred op of `kind` whose result is at host address `result`, or -1.
    int find_deferred(DeferredOp::Kind kind, const float *result) const;
    // Whether deferred op i, folded into a consumer's command that reads `reads` and writes
    // `writes`, may be recorded ahead of the other deferred ops (it commutes with them all);
    // if not, records them all in order (op i with them) and says no: the consumer then
    // takes the unfused way.
    bool fuses_ahead(size_t i, std::span<const BufferSlice> reads, std::span<const BufferSlice> writes);
    // Whether a command that reads `reads` and writes `writes` commutes with every deferred
    // op but i and `also` (fuses_ahead's test, recording nothing).
    bool commutes(size_t i, size_t also, std::span<const BufferSlice> reads, std::span<const BufferSlice> writes) const;
    // Take deferred op i out and run `record` (the consumer's fused command) now.
    void record_fused(size_t i, const std::function<void(const DeferredOp &)> &record);
    // drop_results of [ptr, ptr + bytes): deferred ops whose result lies there are recorded
    // first, so that an op after it, finding the same host address, never folds in a result
    // the caller has since rewritten on the host.
    void record_deferred_results_in(const void *ptr, size_t bytes);
    bool defer_norm(const float *x, const WeightView &w, float offset, float eps, float *y, int64_t n_rows,
                    int64_t dim);
    // matmul of one token: folded with a deferred norm of x, or deferred itself; false when
    // the fusions do not apply.
    bool matmul_fused(const WeightView &w, const float *x, float *y);
    // add of x (its device slice xs) and a deferred product y: the add in its epilogue.
    bool add_fused(float *x, const BufferSlice &xs, const float *y, int64_t n);
    bool rope_fused(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const BufferSlice &table,
                    const RopeParams &p);
    // Where k's norm_rope also appends the step to a KV mirror (its K rows from row
    // `capacity * head + pos0`, its head's v rows from `v_rows`).
    struct KvAppend {
        BufferSlice k_mirror, v_rows, v_mirror;
        uint32_t capacity = 0, pos0 = 0, v_dim = 0;
    };
    // The deferred norm_rope op as norm_rope.comp's dispatch; with kv, the _kv variant; with
    // kv and q (q's deferred norm_rope of the same step), the _qk_kv variant: q's rows too.
    void record_norm_rope(const DeferredOp &op, const KvAppend *kv, const DeferredOp *q);
    // The KV append of one decode token folded into k's deferred norm_rope (op_kv_append.cpp,
    // MST_VULKAN_KV_APPEND_FUSION), and with the q/k/v fusion q's deferred norm_rope (its
    // result at q) beside it: true when it recorded the append and brought the mirror of
    // p.cache_id up to pos0 + 1; false (the mirror untouched) when kv_mirror must.
    bool append_kv_fused(const float *q, const float *k_cache, const float *v_cache, const AttentionParams &p);
    void configure_kv_append_fusion_from_environment();  // MST_VULKAN_KV_APPEND_FUSION; throws naming a bad value
    bool kv_append_fusion_ = true;
    uint64_t fused_kv_appends_ = 0;
    // Whether matvec_fused.comp's norm variant runs here: its workgroup replays
    // norm_vec4.comp's 256 invocations in whole rounds.
    bool norm_product_fits(const WeightView &w) const;
    // kind "norm", "add", "norm_topk" or "norm_qkv"
    const VulkanPipeline &fused_matvec_pipeline(const char *kind, DType t);
    const VulkanPipeline *fused_matvec_pipelines_[4][32] = {};  // norm, add, norm_topk, norm_qkv; by DType
    // The router product with softmax_topk (op_routing.cpp, MST_VULKAN_ROUTER_TOPK_FUSION):
    // one token's norm product of at most kTopkProductRows rows is deferred in turn, and a
    // softmax_topk of its result records one matvec_norm_topk dispatch for both.
    bool softmax_topk_fused(const float *logits, int32_t n_experts, int32_t k, bool renormalize, int32_t *ids,
                            float *weights);
    void configure_router_topk_fusion_from_environment();  // MST_VULKAN_ROUTER_TOPK_FUSION; throws naming a bad value
    bool router_topk_fusion_ = true;
    uint64_t fused_router_topks_ = 0;
    std::unique_ptr<VulkanBuffer> topk_counter_;  // matvec_norm_topk's count of finished workgroups, 0 between dispatches
    bool topk_counter_zeroed_ = false;
    // Whether one token's product of w takes matvec.comp (and so its fused forms).
    bool matvec_fits(const WeightView &w) const;
    // Whether products w of one normed x (each fits the norm product) take one
    // matvec_norm_qkv dispatch: the switch, three of them, one type, the grid in range.
    bool qkv_fits(std::span<const WeightView> w) const;
    uint64_t qkv_workgroups(std::span<const WeightView> w) const;
    // The three products w (on the device at dw, into ys) of the deferred norm n of one
    // row as one matvec_norm_qkv dispatch, the first writing n's result.
    void record_norm_qkv(std::span<const WeightView> w, const DeviceWeight *dw, const DeferredOp &n,
                         const BufferSlice *ys);
    void configure_qkv_fusion_from_environment();  // MST_VULKAN_QKV_FUSION; throws naming a bad value
    bool qkv_fusion_ = true;
    uint64_t fused_qkv_products_ = 0, fused_qk_norm_ropes_ = 0;
    void configure_l2_warm_from_environment();  // MST_VULKAN_L2_WARM(_GROUPS); throws naming a bad value
    // Records one l2_warm dispatch over up to three ranges (those outside the warmed sizes, or
    // not 16-byte aligned, left out) into the level open now, ahead of the deferred ops; none
    // when nothing is left or it would not join the level. Returns whether it recorded one.
    bool record_l2_warm(std::span<const BufferSlice> ranges);
    // kWarmQkv: at the end of `layer`'s experts, warm what followed it before and note the
    // layer; at a fused q/k/v dispatch, learn its weights as what follows the noted layer.
    void warm_after_layer(int64_t layer);
    void learn_after_layer(std::span<const DeviceWeight> qkv);
    uint32_t l2_warm_ = 0, l2_warm_groups_ = 64;
    uint64_t l2_warm_min_bytes_ = kWarmMinBytes;
    uint64_t l2_warm_dispatches_ = 0;
    std::map<int64_t, std::array<BufferSlice, 3>> warm_after_layer_;
    uint64_t warm_learned_destroyed_ = 0;  // VulkanBuffer::destroyed() when warm_after_layer_ was learned
    int64_t warm_layer_ = -1;               // the layer whose experts were recorded last, -1 when none
    uint64_t warm_layer_resets_ = 0;        // the stream's scratch_resets() then
    // y = W rms_norm(x) for the deferred norm n of one row; with write_h, n's result too.
    void record_norm_product(const WeightView &w, const BufferSlice &weight, const DeferredOp &n, const BufferSlice &y,
                             bool write_h);
    void record_norm(int mode, const BufferSlice &xs, const BufferSlice &ws, const BufferSlice &gs,
                     const BufferSlice &ys, float offset, float eps, int64_t n_rows, int64_t dim);
    // rope's cos/sin table for these positions on the device (kept per batch with the decode fusion).
    BufferSlice rope_table_on_device(int64_t n_tokens, const int32_t *positions, const RopeParams &p);
    void configure_attention_fusion_from_environment();  // MST_VULKAN_ATTENTION_FUSION; throws naming a bad value
    bool attention_fusion_ = true;
    uint64_t fused_norm_products_ = 0, fused_norm_ropes_ = 0, fused_residual_products_ = 0;
    void configure_decode_fusion_from_environment();  // MST_VULKAN_DECODE_FUSION; throws naming a bad value
    bool decode_fusion_ = true;
    uint64_t copy_rows_aliased_ = 0;
    uint64_t matvec_dispatches_ = 0;
    // Experts chosen on the device (op_experts_by_id.cpp).
    void configure_experts_by_id_from_environment();  // MST_VULKAN_EXPERTS_BY_ID; throws naming a bad value
    // Throws when a routed_swiglu_by_id of the work that has run met an expert not on the
    // device (the flag matvec_id.comp sets, delivered with the batch's results).
    void check_expert_misses();
    bool experts_by_id_ = true;
    uint64_t experts_by_id_calls_ = 0;
    uint32_t expert_miss_ = 0;  // host address of the miss flag, a result of the batch
    const VulkanPipeline *matvec_id_pipelines_[32] = {};  // by DType
    const VulkanPipeline *matvec_id_swiglu_pipelines_[32] = {};   // by DType
    const VulkanPipeline *matvec_id_combine_pipelines_[32] = {};  // by DType
    const VulkanPipeline *matvec_id_down_pipelines_[32] = {};  // by DType: matvec_id at the combine family's shape
    // routed_swiglu_by_id (residual false: out += the sum) and routed_swiglu_by_id_add
    // (residual true: out = out + the sum, only with the fusion on).
    void record_experts_by_id(int64_t layer, const float *h, float *out, int64_t hidden, const int32_t *ids,
                              const float *weights, int32_t k, bool residual);
    void configure_moe_fusion_from_environment();  // MST_VULKAN_MOE_FUSION; throws naming a bad value
    bool moe_fusion_ = true;
    bool combine_in_down_ = false;
    // routed_swiglu of a batch through grouped GEMMs; false (nothing recorded) where they
    // do not apply: few tokens, the GEMM off, experts of mixed types or shapes.
    bool routed_swiglu_grouped(const float *h, float *out, int64_t n_tokens, int64_t hidden,
                               const SwigluExpertUse *experts, size_t n_experts, int64_t total);
    // Records dst[i] = h[gather[i]] (rows of `hidden` floats) into new device scratch.
    BufferSlice record_gather_rows(const BufferSlice &h, const std::vector<uint32_t> &gather, int64_t hidden);
    // The same with the n_rows row indices already on the device (a device-built grouping).
    BufferSlice record_gather_rows(const BufferSlice &h, const BufferSlice &rows, size_t n_rows, int64_t hidden);
    // out[t] += each of token t's uses [offsets[t], offsets[t + 1]), (row of y, weight bits):
    // shaders/combine.comp, recorded only.
    void record_combine(const BufferSlice &y, const BufferSlice &uses, const BufferSlice &offsets,
                        const BufferSlice &out, int64_t n_tokens, int64_t hidden);
    // Adds each token's weighted expert outputs (rows of y in expert order) into out, then
    // submits: routed_swiglu's last step.
    void record_routed_combine(const BufferSlice &y, float *out, int64_t n_tokens, int64_t hidden,
                               const SwigluExpertUse *experts, size_t n_experts, int64_t total);
    // One expert's part of a grouped GEMM: its weights from word weight_word of the bound
    // buffer (and its up weights from up_word, when fused), its n token rows from row0 of
    // x and y.
    struct ExpertSlice {
        uint32_t weight_word;
        uint64_t row0, n;
        uint32_t up_word = 0;
    };
    // Where an expert's part (gate, up or down) lies on the device, for routed_swiglu_grouped.
    struct ExpertPart {
        VkBuffer buffer;
        uint64_t offset, bytes;
        size_t expert;
    };
    // The grouped gate and up products with SwiGLU in one pass per run of experts whose
    // gate and up weights share a buffer (out = silu(gate x) * (up x)); false, with
    // nothing recorded, when fused_swiglu_ is off or some expert's gate and up lie apart.
    bool record_fused_gate_up(const std::vector<ExpertPart> &gate, const std::vector<ExpertPart> &up,
                              const WeightView &shape, const BufferSlice &x, const BufferSlice &out,
                              const std::vector<uint64_t> &row0, const SwigluExpertUse *experts, uint64_t max_range);
    // Records y = W_e x for every expert slice in one dispatch (gemm.comp GROUPED), the
    // weights of all of them in `weights`, each of shape's type, rows and cols; `swiglu`:
    // y = silu(W_e x) * (U_e x), W_e the gate and U_e the up weights (gemm.comp SWIGLU).
    void record_gemm_grouped(const WeightView &shape, const BufferSlice &weights, const std::vector<ExpertSlice> &slices,
                             const BufferSlice &x, const BufferSlice &y, bool swiglu = false);
    // The same from a tile table of n_tiles (weight word, first row, tokens, up word) rows
    // already on the device; rows with no tokens make their workgroups exit.
    void record_gemm_grouped_table(const WeightView &shape, const BufferSlice &weights, const BufferSlice &table,
                                   size_t n_tiles, const BufferSlice &x, const BufferSlice &y, bool swiglu = false);
    void configure_grouped_experts_from_environment();  // MST_VULKAN_GROUPED_EXPERTS; throws naming a bad value
    bool grouped_experts_ = true;
    bool fused_swiglu_ = true;
    uint64_t grouped_expert_dispatches_ = 0;
    uint64_t fused_swiglu_dispatches_ = 0;
    // A batch's resident experts grouped on the device (op_experts_device_grouped.cpp).
    void configure_device_grouping_from_environment();  // MST_VULKAN_DEVICE_GROUPING; throws naming a bad value
    // Why layer L's experts cannot take the device grouping, or "" when they can.
    std::string device_grouping_unsupported(const ExpertSlots::Layer &L) const;
    bool device_grouping_ = true;
    uint64_t batch_by_id_calls_ = 0;
    void configure_expert_prefetch_from_environment();  // MST_VULKAN_EXPERT_PREFETCH; throws naming a bad value
    bool expert_prefetch_ = true;
    // A streamed layer's hits computed first and each miss behind its own copies (op_experts.cpp).
    void configure_stream_overlap_from_environment();  // MST_VULKAN_STREAM_OVERLAP; throws naming a bad value
    bool stream_overlap_ = false;
    uint32_t stream_group_ = 1;
    void configure_prefill_host_from_environment();  // MST_VULKAN_PREFILL_HOST; throws naming a bad value
    bool prefill_host_ = true;
};

// The matvec.comp variant for one token's rows of type t and `cols` (without the _sg
// suffix), or nullptr where it does not take them (op_matvec.cpp).
const char *matvec_shader(DType t, int64_t cols);

// For the registry: the backend "vulkan" names (throws MST_ERR_BACKEND when no device),
// and the GPU "auto" would use (nullptr, with `why`, when there is none).
std::unique_ptr<Backend> create_vulkan_backend(const BackendOptions &options);
std::unique_ptr<Backend> try_create_vulkan_gpu(const BackendOptions &options, std::string &why);
// One line per Vulkan device, for listings.
std::vector<std::string> vulkan_device_descriptions();

}  // namespace mst
