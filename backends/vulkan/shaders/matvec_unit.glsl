// The unit dot product of matvec.comp and matvec_id.comp (one token's products): unit u
// (one 16-byte load of a float row, a quarter of a 32-weight block; a q4 row's whole block)
// of weight row r against the matching elements of x, in two halves: unit_x(u) loads (and,
// where X4 is matvec_fused.comp's normalised x, computes) the unit's x once, unit_dot_x
// multiplies one row's unit by it, so a lane that takes several rows (matvec_rows.glsl)
// loads each x element once for all of them. unit_dot(r, u) is the two in one, the same
// operations in the same order whether x is shared or not. The including shader declares the word views w[]
// and w4[] of its weights and defines X4(i), its x as vec4s (matvec_id.comp offsets it per
// expert).
// The weight word views: w[] and w4[] unless the includer names others (W_WORDS, W_VEC4:
// matvec_id_swiglu.comp includes this file once per weight stack, with unit_dot and
// unit_dot_x renamed).
#ifndef W_WORDS
#define W_WORDS w
#define W_VEC4 w4
#endif

// Elements per unit: one 16-byte load of a float type, a quarter of a 32-weight block; for
// q4 a whole block unless Q4_BLOCK is 0 (MST_VULKAN_Q4_BLOCK=0, the quarter units before).
// Defined once (with the unit's x, which reads no weights): matvec_id_swiglu.comp includes
// this file twice, once per weight stack.
#ifndef MATVEC_UNIT_SIZE_DEFINED
#define MATVEC_UNIT_SIZE_DEFINED
layout(constant_id = 3) const uint Q4_BLOCK = 1;
#ifdef W_F32
const uint UNIT = 4u;
#elif defined(W_Q4)
const uint UNIT = 8u << (2u * Q4_BLOCK);  // 32 or 8
#else
const uint UNIT = 8u;
#endif

// The x elements of one unit, as vec4s in the order the unit's weights take them; s (q4)
// their sum, which the block's minimum multiplies.
#if defined(W_F32)
struct UnitX { vec4 x0; };
#elif defined(W_Q4)
struct UnitX { vec4 x0, x1, x2, x3, x4, x5, x6, x7, s; };
#else
struct UnitX { vec4 x0, x1; };
#endif

// Unit u's x.
UnitX unit_x(uint u) {
    UnitX v;
#if defined(W_F32)
    v.x0 = X4(u);
#elif defined(W_F16) || defined(W_BF16)
    v.x0 = X4(2u * u);
    v.x1 = X4(2u * u + 1u);
#elif defined(W_Q8)
    const uint xb = ((u >> 2) * 32u + (u & 3u) * 8u) / 4u;
    v.x0 = X4(xb);
    v.x1 = X4(xb + 1u);
#elif defined(W_Q4)
    if (Q4_BLOCK != 0u) {
        const uint xb = u * 8u;
        v.x0 = X4(xb);
        v.x1 = X4(xb + 1u);
        v.x2 = X4(xb + 2u);
        v.x3 = X4(xb + 3u);
        v.x4 = X4(xb + 4u);
        v.x5 = X4(xb + 5u);
        v.x6 = X4(xb + 6u);
        v.x7 = X4(xb + 7u);
        // precise: where X4 is a product (matvec_fused.comp's normalised x), no add of it may
        // become a fused multiply-add, so that the sum is the unfused commands' bit for bit.
        precise const vec4 xs = ((v.x0 + v.x1) + (v.x2 + v.x3)) + ((v.x4 + v.x5) + (v.x6 + v.x7));
        v.s = xs;
    } else {
        // A quarter block: elements 8p .. 8p + 7 of block u >> 2 (p = u & 3).
        const uint xb = ((u >> 2) * 32u + (u & 3u) * 8u) / 4u;
        v.x0 = X4(xb);
        v.x1 = X4(xb + 1u);
        precise const vec4 ac = v.x0 + v.x1;  // as xs above
        v.s = ac;
    }
#endif
    return v;
}

#if defined(W_F32) || defined(W_F16) || defined(W_BF16)
// A float type's unit is one 16-byte load (word q of row r's unit u is W_VEC4[r * (pc.cols /
// UNIT) + u]); its dot product with the unit's x apart from the load, so that
// matvec_fused.comp's router can issue the loads early and multiply later, the same bits.
float unit_dot_q(uvec4 q, UnitX v) {
#if defined(W_F32)
    return dot(uintBitsToFloat(q), v.x0);
#else
#if defined(W_F16)
    const vec4 lo = vec4(unpackHalf2x16(q.x), unpackHalf2x16(q.y));
    const vec4 hi = vec4(unpackHalf2x16(q.z), unpackHalf2x16(q.w));
#else
    const vec4 lo = uintBitsToFloat(uvec4(q.x << 16, q.x & 0xffff0000u, q.y << 16, q.y & 0xffff0000u));
    const vec4 hi = uintBitsToFloat(uvec4(q.z << 16, q.z & 0xffff0000u, q.w << 16, q.w & 0xffff0000u));
#endif
    return dot(lo, v.x0) + dot(hi, v.x1);
#endif
}
#endif
#endif

// The dot product of unit u of row r with its x (unit_x(u)).
float unit_dot_x(uint r, uint u, UnitX v) {
#if defined(W_F32) || defined(W_F16) || defined(W_BF16)
    return unit_dot_q(W_VEC4[r * (pc.cols / UNIT) + u], v);
#elif defined(W_Q8)
    // 34-byte blocks (f16 scale, 32 int8): part p holds bytes 2 + 8p .. 9 + 8p of its
    // block, 2-byte aligned, so it spans two words or three (read as 16-bit halves).
    const uint blk = u >> 2, part = u & 3u;
    const uint base = (r * (pc.cols / 32u) + blk) * 34u;
    const float d = f16_bits_to_f32(READ_U16(W_WORDS, base));
    const uint a = base + 2u + 8u * part, wi = a >> 2;
    uint q0, q1;
    if ((a & 2u) == 0u) {
        q0 = W_WORDS[wi];
        q1 = W_WORDS[wi + 1u];
    } else {
        const uint w0 = W_WORDS[wi], w1 = W_WORDS[wi + 1u], w2 = W_WORDS[wi + 2u];
        q0 = (w0 >> 16) | (w1 << 16);
        q1 = (w1 >> 16) | (w2 << 16);
    }
    const vec4 lo = vec4(ivec4(int(q0 << 24), int(q0 << 16), int(q0 << 8), int(q0)) >> 24);
    const vec4 hi = vec4(ivec4(int(q1 << 24), int(q1 << 16), int(q1 << 8), int(q1)) >> 24);
    return d * (dot(lo, v.x0) + dot(hi, v.x1));
#elif defined(W_Q4)
    if (Q4_BLOCK != 0u) {
        // Unit u is block u of the row (20 bytes: f16 d and m, then byte j = element j low
        // nibble, j + 16 high): its scale word and its four code words, each read once, no
        // word read by two lanes. The blocks are only 4-byte aligned (20 bytes apart), so
        // these are 4-byte loads; five independent ones in flight.
        const uint wb = (r * (pc.cols / 32u) + u) * 5u;
        const uint dm = W_WORDS[wb];
        const uint q0 = W_WORDS[wb + 1u], q1 = W_WORDS[wb + 2u], q2 = W_WORDS[wb + 3u], q3 = W_WORDS[wb + 4u];
        const uvec4 lo = uvec4(0u, 8u, 16u, 24u), hi = uvec4(4u, 12u, 20u, 28u);
        // Word i's low nibbles are elements 4i .. 4i + 3, its high nibbles 16 + 4i ...
        const float low = (dot(vec4((uvec4(q0) >> lo) & 15u), v.x0) + dot(vec4((uvec4(q1) >> lo) & 15u), v.x1)) +
                          (dot(vec4((uvec4(q2) >> lo) & 15u), v.x2) + dot(vec4((uvec4(q3) >> lo) & 15u), v.x3));
        const float high = (dot(vec4((uvec4(q0) >> hi) & 15u), v.x4) + dot(vec4((uvec4(q1) >> hi) & 15u), v.x5)) +
                           (dot(vec4((uvec4(q2) >> hi) & 15u), v.x6) + dot(vec4((uvec4(q3) >> hi) & 15u), v.x7));
        return f16_bits_to_f32(dm & 0xffffu) * (low + high) + f16_bits_to_f32(dm >> 16) * dot(v.s, vec4(1.0));
    }
    // A quarter block (MST_VULKAN_Q4_BLOCK=0): 20-byte blocks (f16 d and m, then byte j = element j low nibble, j + 16 high): part
    // p takes elements 8p .. 8p + 7, the low nibbles of bytes 8p .. for p < 2, the high
    // nibbles of bytes 8(p - 2) .. above.
    const uint blk = u >> 2, part = u & 3u, shift = (part >> 1) * 4u;
    const uint wb = (r * (pc.cols / 32u) + blk) * 5u;
    const uint dm = W_WORDS[wb];
    const uint q0 = W_WORDS[wb + 1u + 2u * (part & 1u)], q1 = W_WORDS[wb + 2u + 2u * (part & 1u)];
    const vec4 wa = vec4((uvec4(q0) >> uvec4(shift, shift + 8u, shift + 16u, shift + 24u)) & 15u);
    const vec4 wc = vec4((uvec4(q1) >> uvec4(shift, shift + 8u, shift + 16u, shift + 24u)) & 15u);
    return f16_bits_to_f32(dm & 0xffffu) * (dot(wa, v.x0) + dot(wc, v.x1)) + f16_bits_to_f32(dm >> 16) * dot(v.s, vec4(1.0));
#endif
}

// The dot product of unit u of row r with the matching elements of x.
float unit_dot(uint r, uint u) { return unit_dot_x(r, u, unit_x(u)); }
