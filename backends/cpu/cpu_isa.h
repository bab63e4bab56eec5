// Which SIMD instruction set the CPU kernels run with. The library is built for baseline
// x86-64 so that one binary runs everywhere; faster kernels are compiled per function
// for their instruction set and chosen here, at run time, from what the CPU reports.
#pragma once

#include <string_view>

namespace mst {

enum class CpuIsa {
    Scalar,  // portable C++, any architecture
    Avx2,    // x86-64 with AVX2 + FMA + F16C
    Avx512,  // x86-64 with AVX-512 F + BW + VL (and the AVX2 set)
};

// "scalar", "avx2" or "avx512".
std::string_view cpu_isa_name(CpuIsa isa);

// Whether this CPU, and the OS's saved register state, can run the ISA's kernels.
bool cpu_isa_supported(CpuIsa isa);

// The fastest ISA this CPU supports.
CpuIsa cpu_isa_best();

// Parse "scalar" | "avx2" | "avx512" | "auto" (= cpu_isa_best()). Throws
// MST_ERR_INVALID_ARGUMENT for any other name and MST_ERR_UNSUPPORTED for an ISA this
// CPU lacks, so that forcing one can never end in an illegal instruction.
CpuIsa cpu_isa_parse(std::string_view name);

// The ISA named by the environment variable MST_CPU_ISA (same spellings as
// cpu_isa_parse), or cpu_isa_best() when it is unset or empty. Read when a CPU backend is
// created by name, so tests and benchmarks can force the scalar or AVX2 path.
CpuIsa cpu_isa_from_env();

// Whether this CPU has AMX-INT8 and the OS lets the process use the tile registers (Linux
// asks each process to request them, arch_prctl(ARCH_REQ_XCOMP_PERM); the request is made
// on the first call), and MST_CPU_AMX (read once) is not 0. The 8-bit-activation AVX-512
// table then takes the AMX kernels for its multi-token Q4 products (quant_kernels_amx.cpp).
bool cpu_use_amx();
// Whether the Q8 products take them too: cpu_use_amx() and MST_CPU_AMX=all (not faster
// than VNNI on this machine, kept to be measured).
bool cpu_use_amx_for_q8();

}  // namespace mst
