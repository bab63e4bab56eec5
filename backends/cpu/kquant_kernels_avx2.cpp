// AVX2 K-quant kernels. As in quant_kernels_avx2.cpp, the target is switched on for this
// file's own functions only, and inside the target region everything has internal linkage
// and calls only intrinsics or out-of-line functions compiled for the baseline.
//
// The codes of a super-block are decoded 32 at a time with shifts and masks. The dot
// product multiplies the unsigned codes (at most 63) with the int8 activations in
// maddubs: each 16-bit lane sums two products of at most 63 x 127, far from saturating.
// A second madd by the sub-blocks' scales gives 32-bit sums; per super-block they stay
// below 16 x 16 x 63 x 127 x 128 < 2^31.
#if defined(__x86_64__)

#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/kquant_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace mst {
namespace {

#include "backends/cpu/kquant_scales_simd.h"

constexpr int kMaxTokens = 16;

inline __m256i load(const void *p) { return _mm256_loadu_si256(static_cast<const __m256i *>(p)); }
inline void store(uint8_t *p, __m256i v) { _mm256_store_si256(reinterpret_cast<__m256i *>(p), v); }

inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

// Q2_K / Q3_K low bits: byte l of half n holds elements 128 n + 32 j + l at shift 2 j.
inline void codes_2bit(const uint8_t *qs, uint8_t *code) {
    const __m256i three = _mm256_set1_epi8(3);
    for (int n = 0; n < 2; ++n) {
        const __m256i v = load(qs + 32 * n);
        for (int j = 0; j < 4; ++j)
            store(code + 128 * n + 32 * j, _mm256_and_si256(_mm256_srli_epi16(v, 2 * j), three));
    }
}

// Q4_K / Q5_K low nibbles: chunk c holds sub-blocks 2c (low) and 2c + 1 (high).
inline void codes_nibbles(const uint8_t *qs, uint8_t *code) {
    const __m256i low = _mm256_set1_epi8(15);
    for (int c = 0; c < 4; ++c) {
        const __m256i v = load(qs + 32 * c);
        store(code + 64 * c, _mm256_and_si256(v, low));
        store(code + 64 * c + 32, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
    }
}

// OR bit `bit` of each byte of `bits`, moved to `to`, into the 32 codes at code.
inline void or_bit(uint8_t *code, __m256i bits, int bit, int to) {
    const __m256i one = _mm256_set1_epi8(1);
    const __m256i b = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits, bit), one), to);
    store(code, _mm256_or_si256(load(code), b));
}

void unpack(DType t, const void *block, KQuantCodes &o) {
    unpack_scales(t, block, o);
    switch (t) {
        case DType::GGML_Q2_K:
            codes_2bit(static_cast<const BlockQ2K *>(block)->qs, o.code);
            return;
        case DType::GGML_Q3_K: {
            const auto &b = *static_cast<const BlockQ3K *>(block);
            codes_2bit(b.qs, o.code);
            const __m256i h = load(b.hmask);
            for (int k = 0; k < 8; ++k) or_bit(o.code + 32 * k, h, k, 2);
            return;
        }
        case DType::GGML_Q4_K:
            codes_nibbles(static_cast<const BlockQ4K *>(block)->qs, o.code);
            return;
        case DType::GGML_Q5_K: {
            const auto &b = *static_cast<const BlockQ5K *>(block);
            codes_nibbles(b.qs, o.code);
            const __m256i h = load(b.qh);
            for (int g = 0; g < 8; ++g) or_bit(o.code + 32 * g, h, g, 4);
            return;
        }
        default: {
            const auto &b = *static_cast<const BlockQ6K *>(block);
            const __m256i low = _mm256_set1_epi8(15), three = _mm256_set1_epi8(3);
            for (int n = 0; n < 2; ++n) {
                const __m256i l0 = load(b.ql + 64 * n), l1 = load(b.ql + 64 * n + 32), h = load(b.qh + 32 * n);
                const __m256i lows[4] = {_mm256_and_si256(l0, low), _mm256_and_si256(l1, low),
                                         _mm256_and_si256(_mm256_srli_epi16(l0, 4), low),
                                         _mm256_and_si256(_mm256_srli_epi16(l1, 4), low)};
                for (int k = 0; k < 4; ++k) {
                    const __m256i high = _mm256_and_si256(_mm256_srli_epi16(h, 2 * k), three);
                    store(o.code + 128 * n + 32 * k, _mm256_or_si256(lows[k], _mm256_slli_epi16(high, 4)));
                }
            }
            return;
        }
    }
}

void dot(const KQuantCodes &w, const BlockQ8K *x, int64_t ldx, int n_tok, float *acc) {
    // Scales of groups 2j (low 128 bits) and 2j + 1 (high), as 16-bit lanes for madd.
    __m256i scales[8];
    for (int j = 0; j < 8; ++j)
        scales[j] = _mm256_set_m128i(_mm_set1_epi16(w.scale[2 * j + 1]), _mm_set1_epi16(w.scale[2 * j]));
    const __m256i mins = load(w.min);
    for (int t = 0; t < n_tok; ++t) {
        const BlockQ8K &a = x[t * ldx];
        __m256i isum = _mm256_setzero_si256();
        for (int j = 0; j < 8; ++j) {
            const __m256i p = _mm256_maddubs_epi16(load(w.code + 32 * j), load(a.q + 32 * j));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, scales[j]));
        }
        const int32_t msum = hsum_epi32(_mm256_madd_epi16(mins, load(a.bsums)));
        acc[t] += kquant_combine(w, a.d, hsum_epi32(isum), msum);
    }
}

constexpr KQuantKernels kAvx2{
    .quantize_activation = quantize_activation_q8k_scalar,
    .unpack = unpack,
    .dot = dot,
    .max_tokens = kMaxTokens,
};

}  // namespace

const KQuantKernels &kquant_kernels_avx2() { return kAvx2; }

}  // namespace mst

#pragma GCC pop_options

#endif  // __x86_64__
