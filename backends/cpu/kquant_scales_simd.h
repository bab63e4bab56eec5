// The scales and minimums of a K-quant super-block decoded in vectors, shared by the AVX2
// and AVX-512 kernels (kquant_kernels_avx2.cpp, _avx512.cpp). GGML packs them in 12 or 16
// bytes; the 32-bit words are unpacked with shifts and masks (Q3_K, Q4_K, Q5_K) or widened
// directly (Q2_K, Q6_K), where the baseline decoder (core/ggml_kquants.h,
// kquant_unpack_scales) loops over the 16 groups; the values are the baseline's exactly.
// Each kernel file includes this inside its target region and an anonymous namespace, so
// everything here is compiled for that instruction set with internal linkage (see
// quant_kernels_avx2.cpp for why no SIMD code may have external linkage); only AVX2 and
// F16C instructions are used, which both have.
//
// The includer has included <immintrin.h>, <cstdint> and backends/cpu/kquant_kernels.h
// before opening its namespace (this file includes nothing, being inside one).
#pragma once

inline uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

inline void store_scales(KQuantCodes &o, __m256i scale, __m256i min) {
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(o.scale), scale);
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(o.min), min);
}

inline void scales_q2k(const BlockQ2K &b, KQuantCodes &o) {
    const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.scales)), low = _mm_set1_epi8(15);
    store_scales(o, _mm256_cvtepu8_epi16(_mm_and_si128(s, low)),
                 _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), low)));
    o.d = _cvtsh_ss(b.d);
    o.dmin = _cvtsh_ss(b.dmin);
    o.offset = 0;
}

// Scale g's low nibble is nibble g / 8 of scales[g % 8], its two high bits bits 2 (g / 4)
// of scales[8 + g % 4]: for groups 4k .. 4k + 3, the word of low nibbles k, or'ed with
// bits 2k of the third word moved to bit 4.
inline void scales_q3k(const BlockQ3K &b, KQuantCodes &o) {
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
inline void scales_q45k(const Block &b, KQuantCodes &o) {
    const uint32_t w0 = load_u32(b.scales), w1 = load_u32(b.scales + 4), w2 = load_u32(b.scales + 8);
    constexpr uint32_t kSix = 0x3f3f3f3f, kLow = 0x0f0f0f0f, kTwo = 0x03030303;
    const uint32_t sc_hi = (w2 & kLow) | (((w0 >> 6) & kTwo) << 4);
    const uint32_t m_hi = ((w2 >> 4) & kLow) | (((w1 >> 6) & kTwo) << 4);
    store_scales(o, per_group(w0 & kSix, sc_hi), per_group(w1 & kSix, m_hi));
    o.d = _cvtsh_ss(b.d);
    o.dmin = _cvtsh_ss(b.dmin);
    o.offset = 0;
}

inline void scales_q6k(const BlockQ6K &b, KQuantCodes &o) {
    const __m256i scale = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(b.scales)));
    store_scales(o, scale, _mm256_slli_epi16(scale, 5));
    o.d = o.dmin = _cvtsh_ss(b.d);
    o.offset = 32;
}

// Scales, minimums, d, dmin and offset of the super-block of type t at block.
inline void unpack_scales(DType t, const void *block, KQuantCodes &o) {
    switch (t) {
        case DType::GGML_Q2_K: return scales_q2k(*static_cast<const BlockQ2K *>(block), o);
        case DType::GGML_Q3_K: return scales_q3k(*static_cast<const BlockQ3K *>(block), o);
        case DType::GGML_Q4_K: return scales_q45k(*static_cast<const BlockQ4K *>(block), o);
        case DType::GGML_Q5_K: return scales_q45k(*static_cast<const BlockQ5K *>(block), o);
        default: return scales_q6k(*static_cast<const BlockQ6K *>(block), o);
    }
}
