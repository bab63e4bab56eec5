#include "backends/cpu/cpu_backend.h"

#include <cmath>

#include "backends/cpu/matmul.h"
#include "core/error.h"

namespace mst {
namespace {

// Elementary steps below which an op stays on the calling thread.
constexpr int64_t kMinParallelWork = 32 * 1024;

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
    if (w.dtype == DType::MXFP4) return matmul_mxfp4(w, x, y, n_tokens);
    if (w.dtype == DType::PACKED_I4 || w.dtype == DType::PACKED_I8) return matmul_packed_int(w, x, y, n_tokens);
    cpu_matmul(kernels_, n_threads_, w, x, y, n_tokens);
}

void CpuBackend::silu_mul(const float *gate, const float *up, float *out, int64_t n) {
    check_silu_mul_params(gate, up, out, n);
    // Element by element, so out may alias gate or up.
#pragma omp parallel for num_threads(threads_for(n)) if (threads_for(n) > 1) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float g = gate[i];
        out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
}

}  // namespace mst
