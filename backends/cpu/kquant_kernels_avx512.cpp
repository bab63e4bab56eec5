// AVX-512 K-quant kernels (F + BW + VL): the AVX2 kernels' arithmetic on 512-bit vectors,
// with the scales decoded in vectors too. As in kquant_kernels_avx2.cpp, the target is
// switched on for this file's own functions only, and inside the target region everything
// has internal linkage and calls only intrinsics or out-of-line baseline functions.
//
// Codes: a super-block's 256 codes are four vectors of 64; each is two 32-byte source
// vectors (or one duplicated) shifted by a per-half count (vpsrlvw) and masked, where AVX2
// takes a shift, a mask and a store per 32. Scales: GGML packs them in 12 or 16 bytes; the
// 32-bit words are unpacked with shifts and masks (Q3_K, Q4_K, Q5_K) or widened directly
// (Q2_K, Q6_K), where the baseline decoder loops over the 16 groups. Dot: each 64-code
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

constexpr int kMaxTokens = 16;

inline __m256i load256(const void *p) { return _mm256_loadu_si256(static_cast<const __m256i *>(p)); }
inline __m128i load128(const void *p) { return _mm_loadu_si128(static_cast<const __m128i *>(p)); }
inline void store256(void *p, __m256i v) { _mm256_storeu_si256(static_cast<__m256i *>(p), v); }

inline uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

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

// ---- scales ---------------------------------------------------------------------------

inline void store_scales(KQuantCodes &o, __m256i scale, __m256i min) {
    store256(o.scale, scale);
    store256(o.min, min);
}

void scales_q2k(const BlockQ2K &b, KQuantCodes &o) {
    const __m128i s = load128(b.scales), low = _mm_set1_epi8(15);
    store_scales(o, _mm256_cvtepu8_epi16(_mm_and_si128(s, low)),
                 _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), low)));
    o.d = _cvtsh_ss(b.d);
    o.dmin = _cvtsh_ss(b.dmin);
    o.offset = 0;
}

// Scale g's low nibble is nibble g / 8 of scales[g % 8], its two high bits bits 2 (g / 4)
// of scales[8 + g % 4]: for groups 4k .. 4k + 3, the word of low nibbles k, or'ed with
// bits 2k of the third word moved to bit 4.
void scales_q3k(const BlockQ3K &b, KQuantCodes &o) {
    const uint32_t w0 = load_u32(b.scales), w1 = load_u32(b.scales + 4), w2 = load_u32(b.scales + 8);
    constexpr uint32_t kLow = 0x0f0f0f0f, kTwo = 0x03030303;
    const uint32_t lows[4] = {w0 & kLow, w1 & kLow, (w0 >> 4) & kLow, (w1 >> 4) & kLow};
    uint32_t words[4];
    for (int k = 0; k < 4; ++k) words[k] = lows[k] | (((w2 >> (2 * k)) & kTwo) << 4);
    const __m128i u = _mm_setr_epi32(int(words[0]), int(words[1]), int(words[2]), int(words[3]));
    const __m256i scale = _mm256_cvtepi8_epi16(_mm_sub_epi8(u, _mm_set1_epi8(32)));
    store_scales(o, scale, _mm256_slli_epi16(scale, 2));
    o.d = o.dmin = _cvtsh_ss(b.d);
    o.offset = 4;
}

// Eight 6-bit values (bytes of a, b) repeated for each sub-block's two groups.
inline __m256i per_group(uint32_t a, uint32_t b) {
    const __m128i v = _mm_cvtepu8_epi16(_mm_setr_epi32(int(a), int(b), 0, 0));
    return _mm256_set_m128i(_mm_unpackhi_epi16(v, v), _mm_unpacklo_epi16(v, v));
}

// Sub-blocks 0..3 keep scale and minimum in the low six bits of scales[g] and
// scales[g + 4]; 4..7 take nibbles of scales[g + 4] and the top two bits of scales[g - 4]
// (scale) and scales[g] (minimum).
template <typename Block>
void scales_q45k(const Block &b, KQuantCodes &o) {
    const uint32_t w0 = load_u32(b.scales), w1 = load_u32(b.scales + 4), w2 = load_u32(b.scales + 8);
    constexpr uint32_t kSix = 0x3f3f3f3f, kLow = 0x0f0f0f0f, kTwo = 0x03030303;
    const uint32_t sc_hi = (w2 & kLow) | (((w0 >> 6) & kTwo) << 4);
    const uint32_t m_hi = ((w2 >> 4) & kLow) | (((w1 >> 6) & kTwo) << 4);
    store_scales(o, per_group(w0 & kSix, sc_hi), per_group(w1 & kSix, m_hi));
    o.d = _cvtsh_ss(b.d);
    o.dmin = _cvtsh_ss(b.dmin);
    o.offset = 0;
}

void scales_q6k(const BlockQ6K &b, KQuantCodes &o) {
    const __m256i scale = _mm256_cvtepi8_epi16(load128(b.scales));
    store_scales(o, scale, _mm256_slli_epi16(scale, 5));
    o.d = o.dmin = _cvtsh_ss(b.d);
    o.offset = 32;
}

void unpack(DType t, const void *block, KQuantCodes &o) {
    switch (t) {
        case DType::GGML_Q2_K: {
            const auto &b = *static_cast<const BlockQ2K *>(block);
            scales_q2k(b, o);
            return codes_q2k(b, o);
        }
        case DType::GGML_Q3_K: {
            const auto &b = *static_cast<const BlockQ3K *>(block);
            scales_q3k(b, o);
            return codes_q3k(b, o);
        }
        case DType::GGML_Q4_K: {
            const auto &b = *static_cast<const BlockQ4K *>(block);
            scales_q45k(b, o);
            return codes_q4k(b, o);
        }
        case DType::GGML_Q5_K: {
            const auto &b = *static_cast<const BlockQ5K *>(block);
            scales_q45k(b, o);
            return codes_q5k(b, o);
        }
        default: {
            const auto &b = *static_cast<const BlockQ6K *>(block);
            scales_q6k(b, o);
            return codes_q6k(b, o);
        }
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
