#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/parallel_for.h"

#include <cmath>

#include "backends/cpu/matmul.h"
#include "backends/cpu/matmul_quant.h"
#include "core/error.h"
#include "core/op_profile.h"

namespace mst {
namespace {

// Elementary steps below which an op stays on the calling thread.
constexpr int64_t kMinParallelWork = 32 * 1024;

// The profile's name for a matmul on weights of type t (a literal, as OpTimer needs).
const char *matmul_kind(DType t) {
    switch (t) {
        case DType::F32: return "matmul f32";
        case DType::F16: return "matmul f16";
        case DType::BF16: return "matmul bf16";
        case DType::Q8: return "matmul q8";
        case DType::Q4: return "matmul q4";
        case DType::MXFP4: return "matmul mxfp4";
        default: return "matmul other";
    }
}

// The bytes a matmul reads from w: its rows and, where it has them, its scales.
uint64_t weight_bytes(const WeightView &w) {
    uint64_t bytes = dtype_row_bytes(w.dtype, w.cols) * uint64_t(w.rows);
    if (w.dtype == DType::MXFP4) bytes += uint64_t(w.rows) * uint64_t(w.cols / 32);
    if ((w.dtype == DType::PACKED_I4 || w.dtype == DType::PACKED_I8) && w.group_size > 0)
        bytes += uint64_t(w.rows) * uint64_t(w.cols / w.group_size) * 2;
    return bytes;
}

const CpuKernels &checked_kernels(CpuIsa isa) {
    if (!cpu_isa_supported(isa))
        fail(MST_ERR_UNSUPPORTED, "CPU ISA '{}' is not supported by this CPU (best: {})", cpu_isa_name(isa),
             cpu_isa_name(cpu_isa_best()));
    return cpu_kernels(isa);
}

}  // namespace

CpuBackend::CpuBackend(int n_threads, CpuIsa isa) : n_threads_(n_threads), isa_(isa), kernels_(checked_kernels(isa)) {
    if (n_threads < 1) fail(MST_ERR_INVALID_ARGUMENT, "cpu backend: n_threads must be >= 1, got {}", n_threads);
}

int CpuBackend::threads_for(int64_t work) const { return work >= kMinParallelWork ? n_threads_ : 1; }

void CpuBackend::matmul(const WeightView &w, const float *x, float *y, int64_t n_tokens) {
    check_matmul_params(w, x, y, n_tokens);
    const OpTimer timer(matmul_kind(w.dtype), op_profile_enabled() ? weight_bytes(w) : 0);
    if (w.dtype == DType::MXFP4) return matmul_mxfp4(w, x, y, n_tokens);
    if (w.dtype == DType::PACKED_I4 || w.dtype == DType::PACKED_I8) return matmul_packed_int(w, x, y, n_tokens);
    cpu_matmul(kernels_, n_threads_, w, x, y, n_tokens);
}

void CpuBackend::matmuls_one_input(std::span<const WeightView> w, std::span<float *const> y, const float *x,
                                   int64_t n_tokens) {
    check_matmuls_one_input_params(w, y, x, n_tokens);
    if (!cpu_matmuls_quant_one_input_fits(kernels_, w, n_tokens)) {
        for (size_t i = 0; i < w.size(); ++i) matmul(w[i], x, y[i], n_tokens);
        return;
    }
    // One op of the weights' kind (they have one dtype), as they are one product.
    uint64_t bytes = 0;
    if (op_profile_enabled())
        for (const WeightView &wi : w) bytes += weight_bytes(wi);
    const OpTimer timer(matmul_kind(w[0].dtype), bytes);
    cpu_matmuls_quant_one_input(kernels_, n_threads_, w, y, x, n_tokens);
}

void CpuBackend::silu_mul(const float *gate, const float *up, float *out, int64_t n) {
    check_silu_mul_params(gate, up, out, n);
    const OpTimer timer("silu_mul", 0);
    // Element by element, so out may alias gate or up.
    parallel_for(n, threads_for(n), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            const float g = gate[i];
            out[i] = g / (1.0f + std::exp(-g)) * up[i];
        }
    });
}

}  // namespace mst
