#version 450
// y[t][r] = sum_c W[r][c] x[t][c] for GGML's K-quant types (Q2_K .. Q6_K) as GGUF stores
// them (core/ggml_kquants.h), one variant each, computed on the super-blocks themselves.
// Laid out as matmul_ggml.comp (ROWS rows x LANES lanes, a tile of NT tokens, the same
// bindings and push constants), but a lane takes whole 16-weight groups, the unit every
// K-quant shares a scale over (Q4_K / Q5_K's 32-weight sub-blocks are two groups), so a
// row of one super-block still spreads over 16 lanes. A lane decodes its group's scale
// (and minimum), then each weight as GGML's dequantize_row_* does in float, d * sc * q -
// dmin * m, and multiplies it with every token of the tile. A row may end inside its last
// super-block (moestream's packed files pad it with zeros): weights past `cols` are skipped.
//! variant matmul_kquant_q2_k -DK_Q2
//! variant matmul_kquant_q3_k -DK_Q3
//! variant matmul_kquant_q4_k -DK_Q4
//! variant matmul_kquant_q5_k -DK_Q5
//! variant matmul_kquant_q6_k -DK_Q6
//! variant matmul_kquant_q2_k_sg -DK_Q2 -DUSE_SUBGROUP
//! variant matmul_kquant_q3_k_sg -DK_Q3 -DUSE_SUBGROUP
//! variant matmul_kquant_q4_k_sg -DK_Q4 -DUSE_SUBGROUP
//! variant matmul_kquant_q5_k_sg -DK_Q5 -DUSE_SUBGROUP
//! variant matmul_kquant_q6_k_sg -DK_Q6 -DUSE_SUBGROUP
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common.glsl"

layout(constant_id = 0) const uint LANES = 32;
layout(constant_id = 1) const uint ROWS = 4;
layout(local_size_x_id = 0, local_size_y_id = 1) in;

#define NT 4

layout(std430, binding = 0) readonly buffer Weights { uint w[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Aux { uint aux[]; };  // unused: the scales are in the blocks

layout(push_constant) uniform Push {
    uint rows, cols, n_tokens;
    uint block_rows, block_cols, scale_cols;  // unused
} pc;

#ifndef USE_SUBGROUP
shared float partial[ROWS][NT][LANES];
#endif

#if defined(K_Q2)
const uint BLOCK_BYTES = 84u;
#elif defined(K_Q3)
const uint BLOCK_BYTES = 110u;
#elif defined(K_Q4)
const uint BLOCK_BYTES = 144u;
#elif defined(K_Q5)
const uint BLOCK_BYTES = 176u;
#else
const uint BLOCK_BYTES = 210u;
#endif

// The four bytes at any byte address: block sizes 110 and 210 leave blocks 2 bytes off a
// word. The second word is read only when the bytes straddle it, so never past the end.
uint read_u32(uint addr) {
    const uint lo = w[addr >> 2], shift = (addr & 3u) * 8u;
    return shift == 0u ? lo : (lo >> shift) | (w[(addr >> 2) + 1u] << (32u - shift));
}

// 16 consecutive bytes; byte j of them is (v[j / 4] >> 8 * (j % 4)) & 255.
uvec4 read_16(uint addr) {
    return uvec4(read_u32(addr), read_u32(addr + 4u), read_u32(addr + 8u), read_u32(addr + 12u));
}

uint byte_of(uvec4 v, uint j) { return (v[j >> 2] >> ((j & 3u) * 8u)) & 0xffu; }

// Q4_K / Q5_K: the 6-bit scale and minimum of 32-weight sub-block s (ggml_kquants.h).
void scale_min_k4(uint scales, uint s, out uint sc, out uint m) {
    if (s < 4u) {
        sc = READ_BYTE(w, scales + s) & 63u;
        m = READ_BYTE(w, scales + s + 4u) & 63u;
    } else {
        const uint b = READ_BYTE(w, scales + s + 4u);
        sc = (b & 15u) | ((READ_BYTE(w, scales + s - 4u) >> 6) << 4);
        m = (b >> 4) | ((READ_BYTE(w, scales + s) >> 6) << 4);
    }
}

void main() {
    const uint lane = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y;
    const uint r = gl_WorkGroupID.x * ROWS + ly;
    const uint t0 = gl_WorkGroupID.y * NT;
    const uint nt = min(uint(NT), pc.n_tokens - t0);
    const uint cols = pc.cols;
    float acc[NT];
    for (uint t = 0; t < NT; ++t) acc[t] = 0.0;

    if (r < pc.rows) {
        const uint n_groups = (cols + 15u) / 16u, row_bytes = (cols + 255u) / 256u * BLOCK_BYTES;
        for (uint gi = lane; gi < n_groups; gi += LANES) {
            const uint block = r * row_bytes + (gi / 16u) * BLOCK_BYTES, g = gi % 16u;
            // Weight j of the group is scale * q_j - minimum, q_j from the bytes `q` (and
            // `h`, the high bits) as each type packs them.
            float scale, minimum = 0.0;
            uvec4 q, h = uvec4(0u);
            uint q_shift, h_shift = 0u;
#if defined(K_Q2) || defined(K_Q3)
            // Element 128 n + 32 k + l: bits 2k of qs[32 n + l]; group g is n = g / 8,
            // k = (g % 8) / 2, l = 16 (g % 2) + j.
            const uint n = g / 8u, k = (g % 8u) / 2u, l0 = 16u * (g % 2u);
            q_shift = 2u * k;
#endif
#if defined(K_Q2)
            const uint sm = READ_BYTE(w, block + g);
            scale = f16_bits_to_f32(READ_U16(w, block + 80u)) * float(sm & 15u);
            minimum = f16_bits_to_f32(READ_U16(w, block + 82u)) * float(sm >> 4);
            q = read_16(block + 16u + 32u * n + l0);
#elif defined(K_Q3)
            const uint low = g < 8u ? READ_BYTE(w, block + 96u + g) & 15u : READ_BYTE(w, block + 96u + g - 8u) >> 4;
            const uint high = (READ_BYTE(w, block + 104u + g % 4u) >> (2u * (g / 4u))) & 3u;
            scale = f16_bits_to_f32(READ_U16(w, block + 108u)) * float(int(low | (high << 4)) - 32);
            q = read_16(block + 32u + 32u * n + l0);
            h = read_16(block + l0);  // hmask: bit 4 n + k is the third bit
            h_shift = 4u * n + k;
#elif defined(K_Q4) || defined(K_Q5)
            // Sub-block s = g / 2: nibbles (low for s even) of qs[32 (s / 2) + 16 (g % 2) + j].
            const uint s = g / 2u, l0 = 16u * (g % 2u);
            uint sc, m;
            scale_min_k4(block + 4u, s, sc, m);
            scale = f16_bits_to_f32(READ_U16(w, block)) * float(sc);
            minimum = f16_bits_to_f32(READ_U16(w, block + 2u)) * float(m);
            q_shift = 4u * (s & 1u);
#if defined(K_Q4)
            q = read_16(block + 16u + 32u * (s / 2u) + l0);
#else
            q = read_16(block + 48u + 32u * (s / 2u) + l0);
            h = read_16(block + 16u + l0);  // qh: bit s is the fifth bit
            h_shift = s;
#endif
#else
            // Q6_K, element 128 n + 32 k + l: nibble k / 2 of ql[64 n + 32 (k & 1) + l],
            // two high bits at 2 k of qh[32 n + l].
            const uint n = g / 8u, k = (g % 8u) / 2u, l0 = 16u * (g % 2u);
            const int sc8 = int(READ_BYTE(w, block + 192u + g) << 24) >> 24;
            scale = f16_bits_to_f32(READ_U16(w, block + 208u)) * float(sc8);
            q = read_16(block + 64u * n + 32u * (k & 1u) + l0);
            q_shift = 4u * (k >> 1);
            h = read_16(block + 128u + 32u * n + l0);
            h_shift = 2u * k;
#endif
            const uint c0 = gi * 16u, n_valid = min(16u, cols - c0);
            for (uint j = 0; j < 16u; ++j) {
                if (j >= n_valid) break;
                const uint qb = byte_of(q, j) >> q_shift, hb = byte_of(h, j) >> h_shift;
#if defined(K_Q2)
                const float level = float(qb & 3u);
#elif defined(K_Q3)
                const float level = float(int((qb & 3u) | ((hb & 1u) << 2)) - 4);
#elif defined(K_Q4)
                const float level = float(qb & 15u);
#elif defined(K_Q5)
                const float level = float((qb & 15u) | ((hb & 1u) << 4));
#else
                const float level = float(int((qb & 15u) | ((hb & 3u) << 4)) - 32);
#endif
                const float wv = scale * level - minimum;
                for (uint t = 0; t < NT; ++t) {
                    if (t >= nt) break;
                    acc[t] += wv * x[(t0 + t) * cols + c0 + j];
                }
            }
        }
    }

#ifdef USE_SUBGROUP
    for (uint t = 0; t < NT; ++t) acc[t] = subgroupAdd(acc[t]);
    if (lane == 0u && r < pc.rows)
        for (uint t = 0; t < NT; ++t)
            if (t < nt) y[(t0 + t) * pc.rows + r] = acc[t];
#else
    for (uint t = 0; t < NT; ++t) partial[ly][t][lane] = acc[t];
    barrier();
    for (uint s = LANES / 2u; s > 0u; s >>= 1) {
        if (lane < s)
            for (uint t = 0; t < NT; ++t) partial[ly][t][lane] += partial[ly][t][lane + s];
        barrier();
    }
    if (lane == 0u && r < pc.rows)
        for (uint t = 0; t < NT; ++t)
            if (t < nt) y[(t0 + t) * pc.rows + r] = partial[ly][t][0];
#endif
}
