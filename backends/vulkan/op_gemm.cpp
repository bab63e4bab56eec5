// Prefill products as tiled GEMMs (shaders/gemm.comp): which kernel a product takes, and its
// dispatch. A product of few tokens stays on matmul.comp's matrix-vector kernel, which
// reads the weights at the memory's speed; from kGemmMinTokens on, a GEMM that reads each
// weight once per 64 tokens (not once per 4) and keeps the tile in shared memory wins.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "backends/vulkan/env_switch.h"
#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"
#include "core/log.h"

namespace mst {
namespace {

// Below this the matrix-vector kernel reads the weights at most 4 times (NT = 4 tokens a
// pass), and a 64-token tile would be mostly empty.
constexpr int64_t kGemmMinTokens = 16;
constexpr uint32_t kTileTokens = 64;  // BN of shaders/gemm.comp and gemm_tuned.comp (BM: GemmTuning::tile_rows)

const char *gemm_type_suffix(DType t) {
    switch (t) {
        case DType::F32: return "f32";
        case DType::F16: return "f16";
        case DType::BF16: return "bf16";
        case DType::Q8: return "q8";  // also GGUF Q8_0 (same blocks)
        case DType::Q4: return "q4";  // also GGUF Q4_1
        default: return nullptr;  // other types keep the matrix-vector kernels
    }
}

const char *kernel_name(VulkanBackend::GemmKernel k) {
    switch (k) {
        case VulkanBackend::GemmKernel::automatic: return "auto";
        case VulkanBackend::GemmKernel::portable: return "portable";
        case VulkanBackend::GemmKernel::coopmat: return "coopmat";
        case VulkanBackend::GemmKernel::off: return "off";
    }
    return "?";
}

}  // namespace

bool VulkanBackend::set_gemm(GemmKernel kernel, int64_t min_tokens, std::string &why) {
    if (kernel == GemmKernel::coopmat && !ctx_->cooperative_matrix()) {
        why = ctx_->cooperative_matrix_why_not();
        return false;
    }
    if (min_tokens < 1) {
        why = "min_tokens must be at least 1";
        return false;
    }
    gemm_kernel_ = kernel;
    gemm_min_tokens_ = min_tokens;
    return true;
}

bool VulkanBackend::tuning_fits(const GemmTuning &tuning, CoopPrecision precision, bool swiglu,
                                std::string &why) const {
    if (!tuning.tuned()) return true;
    // The SwiGLU variant declares the most (the up weights' tile beside the gate's); the
    // grouped products' tuning serves it.
    const VkPhysicalDeviceLimits &lim = ctx_->properties().limits;
    // The type whose staging takes least (products of the others fall back to main's kernel
    // where theirs does not fit: gemm_tuning_for).
    uint32_t bytes = UINT32_MAX;
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8, DType::Q4})
        bytes = std::min(bytes, tuning.shared_bytes(swiglu, precision, t));
    if (bytes > lim.maxComputeSharedMemorySize) {
        why = tuning.name() + " needs " + std::to_string(bytes) + " bytes of shared memory a workgroup (" +
              coop_precision_name(precision) + " precision, MST_VULKAN_COOPMAT_PRECISION), the device has " +
              std::to_string(lim.maxComputeSharedMemorySize);
        return false;
    }
    if (tuning.threads() > lim.maxComputeWorkGroupInvocations || tuning.splitk > lim.maxComputeWorkGroupSize[1]) {
        why = tuning.name() + " needs workgroups of 128 x " + std::to_string(tuning.splitk) +
              " threads, the device takes at most " + std::to_string(lim.maxComputeWorkGroupInvocations);
        return false;
    }
    return true;
}

bool VulkanBackend::set_gemm_tuning(const GemmTuning &tuning, std::string &why) {
    return set_gemm_tunings(tuning, tuning, why);
}

bool VulkanBackend::set_gemm_tunings(const GemmTuning &dense, const GemmTuning &grouped, std::string &why) {
    if (!check_gemm_tuning(dense, why) || !check_gemm_tuning(grouped, why) ||
        !tuning_fits(dense, coop_precision_, false, why) || !tuning_fits(grouped, coop_precision_, true, why))
        return false;
    gemm_tuning_ = dense;
    gemm_tuning_grouped_ = grouped;
    return true;
}

bool VulkanBackend::set_coop_precision(CoopPrecision precision, std::string &why) {
    if (!tuning_fits(gemm_tuning_, precision, false, why) || !tuning_fits(gemm_tuning_grouped_, precision, true, why))
        return false;
    coop_precision_ = precision;
    return true;
}

const VulkanPipeline &VulkanBackend::gemm_pipeline(const std::string &shader, uint32_t n_bindings,
                                                   const GemmTuning &t) {
    // The staging's precision: specialization constant 0 of gemm.comp, 4 of gemm_tuned.comp
    // (a shader without it, gemm.comp's float-staged portable kernel, ignores it).
    const uint32_t split = coop_precision_constant(coop_precision_);
    if (!t.tuned()) return pipelines_->get(shader, n_bindings, {split});
    return pipelines_->get(shader, n_bindings,
                           {t.mi, t.nj, t.splitk, t.bk, split, t.tn, t.stages});  // constant_id 0..6 of gemm_tuned.comp
}

void VulkanBackend::configure_gemm_from_environment() {
    gemm_min_tokens_ = kGemmMinTokens;
    gemm_kernel_ = GemmKernel::automatic;
    if (const char *env = std::getenv("MST_VULKAN_GEMM"); env && *env) {
        const std::string v = env;
        if (v == "portable") gemm_kernel_ = GemmKernel::portable;
        else if (v == "off") gemm_kernel_ = GemmKernel::off;
        else if (v != "auto")
            fail(MST_ERR_INVALID_ARGUMENT, "MST_VULKAN_GEMM='{}': expected auto, portable or off", v);
    }
    gemm_prefetch_ = env_switch("MST_VULKAN_GEMM_PREFETCH", gemm_prefetch_, "next step fetched during the products",
                                "serial");
    coop_precision_ = CoopPrecision::split;
    if (const char *env = std::getenv("MST_VULKAN_COOPMAT_PRECISION"); env && *env) {
        std::string why;
        if (!parse_coop_precision(env, coop_precision_, why))
            fail(MST_ERR_INVALID_ARGUMENT, "MST_VULKAN_COOPMAT_PRECISION={}", why);
    }
    // The default tilings (docs/gpu_prefill.md, "The H100's sweep"): on cooperative matrices
    // 1x2x4x128 for the dense products, which an H100 ran 1.21x faster than main's kernel
    // (k, v and the router 2.9x, q 1.03x, o 0.89x), and main's kernel for the grouped experts,
    // where every tuning swept was slower (0.24-0.84x). The portable kernels keep main's: no
    // device without cooperative matrices has been swept.
    const bool coop_device = gemm_kernel_ == GemmKernel::automatic && ctx_->cooperative_matrix();
    gemm_tuning_ = coop_device ? GemmTuning{1, 2, 4, 128} : GemmTuning{};  // dense: q, k, v, o, router
    gemm_tuning_grouped_ = GemmTuning{};                                  // grouped routed experts
    if (const char *env = std::getenv("MST_VULKAN_COOP_TUNING"); env && *env) {
        std::string why;
        GemmTuning dense, grouped;
        if (!parse_gemm_tunings(env, dense, grouped, why) || !set_gemm_tunings(dense, grouped, why))
            fail(MST_ERR_INVALID_ARGUMENT, "MST_VULKAN_COOP_TUNING: {}", why);
    }
    const bool coop = coop_device;
    log(MST_LOG_INFO, "vulkan: prefill products from {} tokens: {}{}{}{}", gemm_min_tokens_,
        gemm_kernel_ == GemmKernel::off ? "matrix-vector kernel (MST_VULKAN_GEMM=off)"
                                        : coop ? "cooperative-matrix GEMM" : "portable tiled GEMM",
        coop || gemm_kernel_ != GemmKernel::automatic ? "" : " (" + ctx_->cooperative_matrix_why_not() + ")",
        gemm_tuning_.tuned() || gemm_tuning_grouped_.tuned()
            ? ", tuned tiling " + gemm_tunings_name(gemm_tuning_, gemm_tuning_grouped_) + " (MST_VULKAN_COOP_TUNING)"
            : "",
        coop || gemm_tuning_.tuned() || gemm_tuning_grouped_.tuned() ? std::string(", f16 staging: ") + coop_precision_name(coop_precision_) +
                                           " (MST_VULKAN_COOPMAT_PRECISION)"
                                     : "");
}

const GemmTuning &VulkanBackend::gemm_tuning_for(DType type, bool grouped, bool swiglu) const {
    static const GemmTuning main_kernel{};
    const GemmTuning &t = grouped ? gemm_tuning_grouped_ : gemm_tuning_;
    if (!t.tuned()) return t;
    return t.shared_bytes(swiglu, coop_precision_, type) <= ctx_->properties().limits.maxComputeSharedMemorySize
               ? t
               : main_kernel;
}

std::string VulkanBackend::gemm_shader(DType t, bool grouped, bool swiglu) const {
    const char *type = gemm_type_suffix(t);
    if (gemm_kernel_ == GemmKernel::off || !type) return {};
    const bool coop = gemm_kernel_ == GemmKernel::coopmat ||
                      (gemm_kernel_ == GemmKernel::automatic && ctx_->cooperative_matrix());
    // gemm_tuned.comp always fetches the next step during the products: no serial variant.
    const bool tuned = gemm_tuning_for(t, grouped, swiglu).tuned();
    return std::string("gemm_") + (grouped ? "grouped_" : !gemm_prefetch_ && !tuned ? "serial_" : "") +
           (tuned ? "tuned_" : "") + (coop ? "coop_" : "") + type;
}

bool VulkanBackend::record_gemm(const WeightView &w, const DeviceWeight &dw, const BufferSlice &x,
                                const BufferSlice &y, int64_t n_tokens) {
    if (n_tokens < gemm_min_tokens_) return false;
    const std::string shader = gemm_shader(w.dtype, false);
    if (shader.empty()) return false;
    const GemmTuning &tuning = gemm_tuning_for(w.dtype, false, false);
    const uint32_t tile_rows = tuning.tile_rows();
    const uint32_t gx = uint32_t((w.rows + tile_rows - 1) / tile_rows);
    const uint32_t gy = uint32_t((n_tokens + kTileTokens - 1) / kTileTokens);
    if (gx > 65535 || gy > 65535)
        fail(MST_ERR_UNSUPPORTED, "matmul ({} GEMM): {} rows x {} tokens exceed one dispatch", kernel_name(gemm_kernel_),
             w.rows, n_tokens);
    const uint32_t push[3] = {uint32_t(w.rows), uint32_t(w.cols), uint32_t(n_tokens)};
    stream_->dispatch(gemm_pipeline(shader, 3, tuning), {dw.data, x, y}, push, sizeof push, gx, gy);
    ++gemm_dispatches_;
    return true;
}

void VulkanBackend::record_gemm_grouped(const WeightView &shape, const BufferSlice &weights,
                                        const std::vector<ExpertSlice> &slices, const BufferSlice &x,
                                        const BufferSlice &y, bool swiglu) {
    std::vector<uint32_t> tiles;  // (first weight word, first token row, tokens, first up word) per tile
    for (const ExpertSlice &s : slices)
        for (uint64_t t = 0; t < s.n; t += kTileTokens)
            tiles.insert(tiles.end(), {s.weight_word, uint32_t(s.row0 + t),
                                       uint32_t(std::min<uint64_t>(kTileTokens, s.n - t)), s.up_word});
    if (tiles.empty()) return;
    record_gemm_grouped_table(shape, weights, stream_->input(tiles.data(), tiles.size() * sizeof(uint32_t)),
                              tiles.size() / 4, x, y, swiglu);
}

void VulkanBackend::record_gemm_grouped_table(const WeightView &shape, const BufferSlice &weights,
                                              const BufferSlice &table, size_t n_tiles, const BufferSlice &x,
                                              const BufferSlice &y, bool swiglu) {
    std::string shader = gemm_shader(shape.dtype, true, swiglu);
    if (shader.empty()) fail(MST_ERR_INTERNAL, "grouped GEMM for {} weights", dtype_name(shape.dtype));
    if (swiglu) shader.insert(std::string("gemm_grouped_").size(), "swiglu_");
    const GemmTuning &tuning = gemm_tuning_for(shape.dtype, true, swiglu);
    const uint32_t tile_rows = tuning.tile_rows();
    const uint32_t gx = uint32_t((shape.rows + tile_rows - 1) / tile_rows);
    if (gx > 65535) fail(MST_ERR_UNSUPPORTED, "grouped GEMM: {} rows exceed one dispatch", shape.rows);
    const uint32_t push[3] = {uint32_t(shape.rows), uint32_t(shape.cols), 0u};
    const VulkanPipeline &p = gemm_pipeline(shader, 4, tuning);
    // At most 65535 workgroups along y: 65520 tiles a dispatch, so that each part of the
    // table starts 256-byte aligned (the most a device asks of a binding's offset).
    constexpr size_t kMaxTiles = 65520;
    for (size_t t0 = 0; t0 < n_tiles; t0 += kMaxTiles) {
        const size_t n = std::min<size_t>(kMaxTiles, n_tiles - t0);
        const BufferSlice part{table.buffer, table.offset + t0 * 16, n * 16, nullptr};
        stream_->dispatch(p, {weights, x, y, part}, push, sizeof push, gx, uint32_t(n));
        ++grouped_expert_dispatches_;
        if (swiglu) ++fused_swiglu_dispatches_;
    }
}

}  // namespace mst
