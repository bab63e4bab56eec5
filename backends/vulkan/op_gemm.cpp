// Prefill products as tiled GEMMs (shaders/gemm.comp): which kernel a product takes, and its
// dispatch. A product of few tokens stays on matmul.comp's matrix-vector kernel, which
// reads the weights at the memory's speed; from kGemmMinTokens on, a GEMM that reads each
// weight once per 64 tokens (not once per 4) and keeps the tile in shared memory wins.
#include <cstdlib>
#include <string>

#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"
#include "core/log.h"

namespace mst {
namespace {

// Below this the matrix-vector kernel reads the weights at most 4 times (NT = 4 tokens a
// pass), and a 64-token tile would be mostly empty.
constexpr int64_t kGemmMinTokens = 16;
constexpr uint32_t kTileRows = 64, kTileTokens = 64;  // BM, BN of shaders/gemm.comp

const char *gemm_shader(DType t, bool coopmat) {
    switch (t) {
        case DType::F32: return coopmat ? "gemm_coop_f32" : "gemm_f32";
        case DType::F16: return coopmat ? "gemm_coop_f16" : "gemm_f16";
        case DType::BF16: return coopmat ? "gemm_coop_bf16" : "gemm_bf16";
        case DType::Q8: return coopmat ? "gemm_coop_q8" : "gemm_q8";  // also GGUF Q8_0 (same blocks)
        case DType::Q4: return coopmat ? "gemm_coop_q4" : "gemm_q4";  // also GGUF Q4_1
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
    const bool coop = gemm_kernel_ == GemmKernel::automatic && ctx_->cooperative_matrix();
    log(MST_LOG_INFO, "vulkan: prefill products from {} tokens: {}{}", gemm_min_tokens_,
        gemm_kernel_ == GemmKernel::off ? "matrix-vector kernel (MST_VULKAN_GEMM=off)"
                                        : coop ? "cooperative-matrix GEMM" : "portable tiled GEMM",
        coop || gemm_kernel_ != GemmKernel::automatic ? "" : " (" + ctx_->cooperative_matrix_why_not() + ")");
}

bool VulkanBackend::record_gemm(const WeightView &w, const DeviceWeight &dw, const BufferSlice &x,
                                const BufferSlice &y, int64_t n_tokens) {
    if (gemm_kernel_ == GemmKernel::off || n_tokens < gemm_min_tokens_) return false;
    const bool coop = gemm_kernel_ == GemmKernel::coopmat ||
                      (gemm_kernel_ == GemmKernel::automatic && ctx_->cooperative_matrix());
    const char *shader = gemm_shader(w.dtype, coop);
    if (!shader) return false;
    const uint32_t gx = uint32_t((w.rows + kTileRows - 1) / kTileRows);
    const uint32_t gy = uint32_t((n_tokens + kTileTokens - 1) / kTileTokens);
    if (gx > 65535 || gy > 65535)
        fail(MST_ERR_UNSUPPORTED, "matmul ({} GEMM): {} rows x {} tokens exceed one dispatch", kernel_name(gemm_kernel_),
             w.rows, n_tokens);
    const uint32_t push[3] = {uint32_t(w.rows), uint32_t(w.cols), uint32_t(n_tokens)};
    stream_->dispatch(pipelines_->get(shader, 3), {dw.data, x, y}, push, sizeof push, gx, gy);
    ++gemm_dispatches_;
    return true;
}

}  // namespace mst
