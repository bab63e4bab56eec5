#include "backends/cpu/cpu_isa.h"

#include <cstdlib>

#include "core/error.h"

namespace mst {

std::string_view cpu_isa_name(CpuIsa isa) {
    switch (isa) {
        case CpuIsa::Scalar: return "scalar";
        case CpuIsa::Avx2: return "avx2";
        case CpuIsa::Avx512: return "avx512";
    }
    return "?";
}

bool cpu_isa_supported(CpuIsa isa) {
    switch (isa) {
        case CpuIsa::Scalar:
            return true;
#if defined(__x86_64__)
        // libgcc's CPU model also checks XCR0, so a feature the OS does not save counts
        // as absent.
        case CpuIsa::Avx2:
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   __builtin_cpu_supports("f16c");
        case CpuIsa::Avx512:
            return cpu_isa_supported(CpuIsa::Avx2) && __builtin_cpu_supports("avx512f") &&
                   __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
        case CpuIsa::Avx2:
        case CpuIsa::Avx512:
            return false;
#endif
    }
    return false;
}

CpuIsa cpu_isa_best() {
    if (cpu_isa_supported(CpuIsa::Avx512)) return CpuIsa::Avx512;
    if (cpu_isa_supported(CpuIsa::Avx2)) return CpuIsa::Avx2;
    return CpuIsa::Scalar;
}

CpuIsa cpu_isa_parse(std::string_view name) {
    if (name == "auto") return cpu_isa_best();
    for (CpuIsa isa : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512}) {
        if (name != cpu_isa_name(isa)) continue;
        if (!cpu_isa_supported(isa))
            fail(MST_ERR_UNSUPPORTED, "CPU ISA '{}' is not supported by this CPU (best: {})", name,
                 cpu_isa_name(cpu_isa_best()));
        return isa;
    }
    fail(MST_ERR_INVALID_ARGUMENT, "unknown CPU ISA '{}' (expected scalar, avx2, avx512 or auto)", name);
}

CpuIsa cpu_isa_from_env() {
    const char *value = std::getenv("MST_CPU_ISA");
    if (value == nullptr || *value == '\0') return cpu_isa_best();
    return cpu_isa_parse(value);
}

}  // namespace mst
