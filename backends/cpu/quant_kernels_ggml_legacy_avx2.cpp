// AVX2 kernels for the GGML legacy types. As in quant_kernels_avx2.cpp, the target is
// switched on for this file's own functions only, and everything inside the target region
// has internal linkage and calls only intrinsics.
//
// A sub-block's 32 codes are decoded to signed bytes (ggml_legacy_decode_simd.h), widen to
// 16-bit lanes and madd with the 16-bit activations in the tiles moestream's Q8 / Q4 use
// (quant_dot_tile_avx2.h).
#if defined(__x86_64__)

#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/quant_kernels_ggml_legacy.h"
#include "core/ggml_legacy_quants.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace mst {
namespace {

#include "backends/cpu/quant_dot_tile_avx2.h"

constexpr int kMaxTokens = 4;

#include "backends/cpu/ggml_legacy_decode_simd.h"

// A legacy decoder K as the AVX2 tiles take it: its byte codes widened to 16-bit lanes.
template <typename K>
struct Widened {
    static constexpr bool kHasMin = K::kHasMin;
    static void decode(const uint8_t *row, int64_t b, DecodedBlock &out) {
        LegacyBytes v;
        K::decode(row, b, v);
        out.lo = _mm256_cvtepi8_epi16(v.lo);
        out.hi = _mm256_cvtepi8_epi16(v.hi);
        out.scale = v.scale;
        out.min = v.min;
    }
};

constexpr GgmlLegacyKernels kAvx2{
    .q4_0 = dot_rows<Widened<Q4_0>>,
    .q5_0 = dot_rows<Widened<Q5_0>>,
    .q5_1 = dot_rows<Widened<Q5_1>>,
    .iq4_nl = dot_rows<Widened<Iq4Nl>>,
    .iq4_xs = dot_rows<Widened<Iq4Xs>>,
    .mxfp4 = dot_rows<Widened<Mxfp4>>,
    .max_tokens = kMaxTokens,
};

}  // namespace
}  // namespace mst

#pragma GCC pop_options

namespace mst {
const GgmlLegacyKernels &ggml_legacy_kernels_avx2() { return kAvx2; }
}  // namespace mst

#endif  // __x86_64__
