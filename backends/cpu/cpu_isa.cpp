#include "backends/cpu/cpu_isa.h"

#include <cstdlib>
#include <string_view>

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

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

namespace {

bool amx_int8_granted() {
#if defined(__x86_64__) && defined(__linux__)
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool amx_tile = (d >> 24) & 1, amx_int8 = (d >> 25) & 1;
    if (!amx_tile || !amx_int8) return false;
    // The tile data state is off until the process asks for it (Linux 5.16+); a refused or
    // unknown request means the kernels would fault, so AMX counts as absent.
    constexpr long kArchGetXcompPerm = 0x1022, kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return false;
    unsigned long granted = 0;
    if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &granted) != 0) return false;
    return (granted >> kXfeatureXtiledata) & 1;
#else
    return false;
#endif
}

std::string_view amx_env() {
    const char *env = std::getenv("MST_CPU_AMX");
    return env ? env : "";
}

}  // namespace

bool cpu_use_amx() {
    // MST_CPU_AMX=0 keeps the VNNI kernels, to measure one against the other.
    static const bool use = amx_env() != "0" && amx_int8_granted();
    return use;
}

bool cpu_use_amx_for_q8() {
    static const bool use = amx_env() == "all" && cpu_use_amx();
    return use;
}

CpuIsa cpu_isa_from_env() {
    const char *value = std::getenv("MST_CPU_ISA");
    if (value == nullptr || *value == '\0') return cpu_isa_best();
    return cpu_isa_parse(value);
}

}  // namespace mst
