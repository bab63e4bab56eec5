#include "backends/cpu/cpu_kernels.h"

namespace mst {

const CpuKernels &cpu_kernels(CpuIsa isa) {
#if defined(__x86_64__)
    if (isa == CpuIsa::Avx512) return cpu_kernels_avx512();
    if (isa == CpuIsa::Avx2) return cpu_kernels_avx2();
#endif
    (void)isa;
    return cpu_kernels_scalar();
}

}  // namespace mst
