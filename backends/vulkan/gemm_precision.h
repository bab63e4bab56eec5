// How the prefill GEMMs that stage their tiles as f16 (the cooperative-matrix kernels of
// shaders/gemm.comp and gemm_tuned.comp, and gemm_tuned.comp's float emulation of them)
// round what they stage: MST_VULKAN_COOPMAT_PRECISION=split|exact|f16, passed to the shaders
// as a specialization constant (coop_precision_constant, op_gemm.cpp). docs/gpu_prefill.md
// has the arithmetic.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mst {

enum class CoopPrecision {
    // The default. Each activation staged as hi = its leading 11 bits and lo = f16(x - hi),
    // products W*hi + W*lo (about 22 significant bits of x instead of 11); weights that f16
    // does not hold exactly (f32, q8: decoded d*q is not an f16) split alike, adding Wlo*hi.
    // q4 weights take one f16 each (the CPU's default gives them 8-bit activations).
    split,
    // split, and q4 too: activations and weights (d*q + m is not an f16) both split. For
    // holding the GPU to the CPU's 16-bit activations (the golden tests pin it); on the
    // q4 SwiGLU tile it costs what q8's split costs (shared memory 32 -> 47 KiB).
    exact,
    // One f16 of each (the kernels before the split: faster, activations rounded to 2^-11).
    f16,
};

// "split", "exact" or "f16".
const char *coop_precision_name(CoopPrecision p);

// The shaders' PRECISION specialization constant (gemm.comp's 0, gemm_tuned.comp's 4):
// 0 f16, 1 split, 2 exact.
uint32_t coop_precision_constant(CoopPrecision p);

// Parses "split", "exact" or "f16"; false with `why` naming the value and the ones taken.
bool parse_coop_precision(std::string_view text, CoopPrecision &out, std::string &why);

}  // namespace mst
