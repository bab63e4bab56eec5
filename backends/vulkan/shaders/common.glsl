// Shared helpers of the compute shaders: widening the stored weight types to float.
// Weights are bound as arrays of 32-bit words and decoded here, so no 8- or 16-bit
// storage feature is needed.

float bf16_bits_to_f32(uint h) { return uintBitsToFloat(h << 16); }

float f16_bits_to_f32(uint h) { return unpackHalf2x16(h).x; }

// Byte `addr` of a word array.
#define READ_BYTE(arr, addr) ((arr[(addr) >> 2] >> (((addr) & 3u) * 8u)) & 0xffu)
// The 16 bits at even byte address `addr`.
#define READ_U16(arr, addr) ((arr[(addr) >> 2] >> (((addr) & 2u) * 8u)) & 0xffffu)

// FP8 E4M3 (no infinities; S.1111.111 is NaN).
float fp8_e4m3_to_f32(uint b) {
    const uint e = (b >> 3) & 15u, m = b & 7u;
    float v;
    if (e == 0u) v = float(m) * (1.0 / 512.0);
    else if (e == 15u && m == 7u) v = uintBitsToFloat(0x7fc00000u);
    else v = uintBitsToFloat(((e + 120u) << 23) | (m << 20));
    return (b & 0x80u) != 0u ? -v : v;
}

float silu(float x) { return x / (1.0 + exp(-x)); }

// The leading 11 significant bits of v (f16's precision), cut by masking its bits: f16
// holds the result exactly (in f16's normal range) and v - f16_head(v) is exact in float,
// so the split staging of gemm.comp and gemm_tuned.comp (hi = f16_head(v), lo =
// f16(v - hi)) keeps about 22 bits. Masking, not a round trip through f16: with
// lo = f16(v - float(f16(v))) an H100 gave bitwise the logits of no split at all (its
// compiler may take float(f16(v)) for v, leaving lo = 0).
float f16_head(float v) { return uintBitsToFloat(floatBitsToUint(v) & 0xFFFFE000u); }
