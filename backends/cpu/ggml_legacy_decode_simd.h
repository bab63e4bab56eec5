// Decoders of the GGML legacy types' 32-element sub-blocks into signed byte codes, shared
// by the AVX2 and AVX-512 kernels (quant_kernels_ggml_legacy_avx2.cpp, _avx512.cpp), which
// widen the bytes to their own vector width. Each of those files includes this inside its
// target region and an anonymous namespace, so everything here is compiled for that
// instruction set with internal linkage (see quant_kernels_avx2.cpp for why no SIMD code
// may have external linkage); only SSE4 / SSSE3 instructions are used, which both have.
//
// A sub-block's 32 codes come as two 16-byte halves (elements 0..15 from the low nibbles,
// 16..31 from the high ones): a nibble goes through a 16-entry pshufb table (Q4_0's q - 8,
// IQ4's non-linear levels, e2m1 doubled), Q5's fifth bits are spread from qh onto bytes by
// a shuffle and a compare.
//
// The includer has included <immintrin.h>, <cstdint> and core/ggml_legacy_quants.h before
// opening its namespace (this file includes nothing, being inside one).
#pragma once

// Codes of one sub-block: x[i] = scale * code[i] + min, code[i] byte i of lo (i < 16) or
// byte i - 16 of hi.
struct LegacyBytes {
    __m128i lo, hi;
    float scale, min;
};

inline uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

inline uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

inline __m128i nibble_table(const int8_t *values) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i *>(values));
}

// The nibbles of 16 bytes as two vectors of 16 byte-sized indices.
inline void split_nibbles(const uint8_t *qs, __m128i &lo, __m128i &hi) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i *>(qs));
    const __m128i mask = _mm_set1_epi8(0x0f);
    lo = _mm_and_si128(packed, mask);
    hi = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
}

// Nibble-table types: codes = table[nibble].
inline void decode_table(const uint8_t *qs, __m128i table, LegacyBytes &out) {
    __m128i lo, hi;
    split_nibbles(qs, lo, hi);
    out.lo = _mm_shuffle_epi8(table, lo);
    out.hi = _mm_shuffle_epi8(table, hi);
}

// 0x10 in byte j where bit j of the 16 bits `bits` is set.
inline __m128i fifth_bits(uint32_t bits) {
    const __m128i spread = _mm_shuffle_epi8(_mm_set1_epi16(int16_t(bits)),
                                            _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
    const __m128i select = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
    const __m128i set = _mm_cmpeq_epi8(_mm_and_si128(spread, select), select);
    return _mm_and_si128(set, _mm_set1_epi8(0x10));
}

// Q5: nibble | fifth bit << 4, minus `offset` (16 for Q5_0, 0 for Q5_1).
inline void decode_q5(const uint8_t *qh, const uint8_t *qs, int8_t offset, LegacyBytes &out) {
    const uint32_t high = load_u32(qh);
    __m128i lo, hi;
    split_nibbles(qs, lo, hi);
    const __m128i off = _mm_set1_epi8(offset);
    out.lo = _mm_sub_epi8(_mm_or_si128(lo, fifth_bits(high & 0xffffu)), off);
    out.hi = _mm_sub_epi8(_mm_or_si128(hi, fifth_bits(high >> 16)), off);
}

constexpr int8_t kQ4_0Values[16] = {-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7};

// One decoder per type: decode(row, b, out) decodes the b-th 32-element sub-block of a row.
struct Q4_0 {
    static constexpr bool kHasMin = false;
    static void decode(const uint8_t *row, int64_t b, LegacyBytes &out) {
        const uint8_t *block = row + b * 18;
        decode_table(block + 2, nibble_table(kQ4_0Values), out);
        out.scale = _cvtsh_ss(load_u16(block));
        out.min = 0.0f;
    }
};

struct Q5_0 {
    static constexpr bool kHasMin = false;
    static void decode(const uint8_t *row, int64_t b, LegacyBytes &out) {
        const uint8_t *block = row + b * 22;
        decode_q5(block + 2, block + 6, 16, out);
        out.scale = _cvtsh_ss(load_u16(block));
        out.min = 0.0f;
    }
};

struct Q5_1 {
    static constexpr bool kHasMin = true;
    static void decode(const uint8_t *row, int64_t b, LegacyBytes &out) {
        const uint8_t *block = row + b * 24;
        decode_q5(block + 4, block + 8, 0, out);
        out.scale = _cvtsh_ss(load_u16(block));
        out.min = _cvtsh_ss(load_u16(block + 2));
    }
};

struct Iq4Nl {
    static constexpr bool kHasMin = false;
    static void decode(const uint8_t *row, int64_t b, LegacyBytes &out) {
        const uint8_t *block = row + b * 18;
        decode_table(block + 2, nibble_table(mst::kIq4NlValues), out);
        out.scale = _cvtsh_ss(load_u16(block));
        out.min = 0.0f;
    }
};

struct Iq4Xs {
    static constexpr bool kHasMin = false;
    static void decode(const uint8_t *row, int64_t b, LegacyBytes &out) {
        const uint8_t *block = row + (b / 8) * 136;
        const int s = int(b % 8);
        const int ls = ((block[4 + s / 2] >> (4 * (s % 2))) & 0x0f) | (((load_u16(block + 2) >> (2 * s)) & 3) << 4);
        decode_table(block + 8 + 16 * s, nibble_table(mst::kIq4NlValues), out);
        out.scale = _cvtsh_ss(load_u16(block)) * float(ls - 32);
        out.min = 0.0f;
    }
};

struct Mxfp4 {
    static constexpr bool kHasMin = false;
    static void decode(const uint8_t *row, int64_t b, LegacyBytes &out) {
        const uint8_t *block = row + b * 17;
        decode_table(block + 1, nibble_table(mst::kMxfp4DoubledValues), out);
        // 2^(e - 128), as ggml_e8m0_half_to_float computes it (a header function, so not called here).
        const uint32_t e = block[0];
        const uint32_t bits = e >= 2 ? (e - 1) << 23 : 0x00200000u << e;
        __builtin_memcpy(&out.scale, &bits, sizeof bits);
        out.min = 0.0f;
    }
};
