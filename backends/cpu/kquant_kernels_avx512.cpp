// AVX-512 K-quant kernels (F + BW + VL): the AVX2 kernels' arithmetic on 512-bit vectors,
// with the scales decoded in vectors too. As in kquant_kernels_avx2.cpp, the target is
// switched on for this file's own functions only, and inside the target region everything
// has internal linkage and calls only intrinsics or out-of-line baseline functions.
//
// Codes: a super-block's 256 codes are four vectors of 64; each is two 32-byte source
// vectors (or one duplicated) shifted by a per-half count (vpsrlvw) and masked, where AVX2
// takes a shift, a mask and a store per 32. Scales: kquant_scales_simd.h, shared with the
// AVX2 kernels. Dot: each 64-code
// vector meets 64 activations in one maddubs and one madd by its four groups' scales
// (spread with vpermw), half the AVX2 kernel's instructions. The integer sums are the
// AVX2 and scalar kernels' exactly (same products, same bounds: kquant_kernels_avx2.cpp),
// and the float combination is the same out-of-line kquant_combine, so results are
// identical to the scalar kernel's bit for bit.
#if defined(__x86_64__)

#include "backends/cpu/avx512_intrinsics.h"

#include <cstdint>

#include "backends/cpu/kquant_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")

namespace mst {
namespace {

#include "backends/cpu/kquant_scales_simd.h"

constexpr int kMaxTokens = 16;

inline __m256i load256(const void *p) { return _mm256_loadu_si256(static_cast<const __m256i *>(p)); }

// The 32 bytes y in both halves of a 512-bit vector.
inline __m512i twice(__m256i y) { return _mm512_inserti64x4(_mm512_castsi256_si512(y), y, 1); }

// Each 16-bit lane of v shifted right by a in the low half and b in the high half. Bytes
// are shifted as pairs; the caller's mask keeps only bits of each byte's own.
inline __m512i shift_halves(__m512i v, int a, int b) {
    return _mm512_srlv_epi16(v, _mm512_inserti64x4(_mm512_set1_epi16(int16_t(a)), _mm256_set1_epi16(int16_t(b)), 1));
}

inline __m512i bits(__m512i v, int a, int b, int mask) {
    return _mm512_and_si512(shift_halves(v, a, b), _mm512_set1_epi8(char(mask)));
}

inline void store_codes(KQuantCodes &o, int c, __m512i v) { _mm512_storeu_si512(o.code + 64 * c, v); }

// ---- codes (layouts: core/ggml_kquants.h) --------------------------------------------

// Q2_K / Q3_K low bits: code 128 n + 32 j + l is bits 2 j of qs[32 n + l]; vector c holds
// n = c / 2 and j = 2 (c % 2) + (0, 1).
inline __m512i low2(const uint8_t *qs, int c) {
    return bits(twice(load256(qs + 32 * (c / 2))), 4 * (c % 2), 4 * (c % 2) + 2, 3);
}

void codes_q2k(const BlockQ2K &b, KQuantCodes &o) {
    for (int c = 0; c < 4; ++c) store_codes(o, c, low2(b.qs, c));
}

// The third bit of code i is bit 4 (i / 128) + (i % 128) / 32 of hmask[i % 32]: bits 2c
// and 2c + 1 for vector c.
void codes_q3k(const BlockQ3K &b, KQuantCodes &o) {
    const __m512i h = twice(load256(b.hmask));
    for (int c = 0; c < 4; ++c)
        store_codes(o, c, _mm512_or_si512(low2(b.qs, c), _mm512_slli_epi16(bits(h, 2 * c, 2 * c + 1, 1), 2)));
}

// Q4_K / Q5_K: sub-blocks 2c and 2c + 1 are the low and high nibbles of qs[32 c .. + 31].
template <typename Block>
inline __m512i nibbles(const Block &b, int c) {
    return bits(twice(load256(b.qs + 32 * c)), 0, 4, 15);
}

void codes_q4k(const BlockQ4K &b, KQuantCodes &o) {
    for (int c = 0; c < 4; ++c) store_codes(o, c, nibbles(b, c));
}

// The fifth bit of sub-block g's codes is bit g of qh.
void codes_q5k(const BlockQ5K &b, KQuantCodes &o) {
    const __m512i h = twice(load256(b.qh));
    for (int c = 0; c < 4; ++c)
        store_codes(o, c, _mm512_or_si512(nibbles(b, c), _mm512_slli_epi16(bits(h, 2 * c, 2 * c + 1, 1), 4)));
}

// Code 128 n + 32 k + l: nibble k / 2 of ql[64 n + 32 (k & 1) + l], high bits 2 k of
// qh[32 n + l]. Vector c holds n = c / 2, k = 2 (c % 2) + (0, 1): the 64 bytes of ql's
// half n, low nibbles for c even, high for c odd.
void codes_q6k(const BlockQ6K &b, KQuantCodes &o) {
    for (int c = 0; c < 4; ++c) {
        const int n = c / 2, k0 = 2 * (c % 2);
        const __m512i ql = _mm512_loadu_si512(b.ql + 64 * n);
        const __m512i low = _mm512_and_si512(_mm512_srli_epi16(ql, 4 * (c % 2)), _mm512_set1_epi8(15));
        const __m512i high = bits(twice(load256(b.qh + 32 * n)), 2 * k0, 2 * k0 + 2, 3);
        store_codes(o, c, _mm512_or_si512(low, _mm512_slli_epi16(high, 4)));
    }
}

void unpack(DType t, const void *block, KQuantCodes &o) {
    unpack_scales(t, block, o);
    switch (t) {
        case DType::GGML_Q2_K: return codes_q2k(*static_cast<const BlockQ2K *>(block), o);
        case DType::GGML_Q3_K: return codes_q3k(*static_cast<const BlockQ3K *>(block), o);
        case DType::GGML_Q4_K: return codes_q4k(*static_cast<const BlockQ4K *>(block), o);
        case DType::GGML_Q5_K: return codes_q5k(*static_cast<const BlockQ5K *>(block), o);
        default: return codes_q6k(*static_cast<const BlockQ6K *>(block), o);
    }
}

// ---- dot ------------------------------------------------------------------------------

// Lane e of vector c multiplies group 4c + e / 8 (eight 16-bit lanes per group of 16).
alignas(64) constexpr int16_t kGroupOfLane[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                  2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};

void dot(const KQuantCodes &w, const BlockQ8K *x, int64_t ldx, int n_tok, float *acc) {
    const __m512i scales = _mm512_castsi256_si512(load256(w.scale));
    const __m512i lane_group = _mm512_load_si512(kGroupOfLane);
    __m512i sc[4], codes[4];
    for (int c = 0; c < 4; ++c) {
        sc[c] = _mm512_permutexvar_epi16(_mm512_add_epi16(lane_group, _mm512_set1_epi16(int16_t(4 * c))), scales);
        codes[c] = _mm512_loadu_si512(w.code + 64 * c);
    }
    const __m256i mins = load256(w.min);
    for (int t = 0; t < n_tok; ++t) {
        const BlockQ8K &a = x[t * ldx];
        __m512i isum = _mm512_setzero_si512();
        for (int c = 0; c < 4; ++c) {
            const __m512i p = _mm512_maddubs_epi16(codes[c], _mm512_loadu_si512(a.q + 64 * c));
            isum = _mm512_add_epi32(isum, _mm512_madd_epi16(p, sc[c]));
        }
        const __m256i m = _mm256_madd_epi16(mins, load256(a.bsums));
        const int32_t msum = _mm512_reduce_add_epi32(_mm512_zextsi256_si512(m));
        acc[t] += kquant_combine(w, a.d, _mm512_reduce_add_epi32(isum), msum);
    }
}

constexpr KQuantKernels kAvx512{
    .quantize_activation = quantize_activation_q8k_scalar,
    .unpack = unpack,
    .dot = dot,
    .max_tokens = kMaxTokens,
};

}  // namespace
}  // namespace mst

#pragma GCC pop_options

namespace mst {
const KQuantKernels &kquant_kernels_avx512() { return kAvx512; }
}  // namespace mst

#endif  // __x86_64__
