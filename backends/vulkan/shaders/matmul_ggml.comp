#version 450
// y[t][r] = sum_c W[r][c] x[t][c] for the GGML legacy block types as GGUF stores them
// (core/ggml_legacy_quants.h), one variant each. Laid out as matmul.comp (ROWS rows x
// LANES lanes, a tile of NT tokens, the same bindings and push constants), but a lane
// takes whole 32-element sub-blocks: it reads the sub-block's scale (and Q5_1's minimum)
// once, sums code * x over its 32 elements for each token, then scales the sums. Blocks
// are 17 to 136 bytes, so they are read bytewise out of the word array.
//! variant matmul_ggml_q4_0 -DG_Q4_0
//! variant matmul_ggml_q5_0 -DG_Q5_0
//! variant matmul_ggml_q5_1 -DG_Q5_1
//! variant matmul_ggml_iq4_nl -DG_IQ4_NL
//! variant matmul_ggml_iq4_xs -DG_IQ4_XS
//! variant matmul_ggml_mxfp4 -DG_MXFP4
//! variant matmul_ggml_q4_0_sg -DG_Q4_0 -DUSE_SUBGROUP
//! variant matmul_ggml_q5_0_sg -DG_Q5_0 -DUSE_SUBGROUP
//! variant matmul_ggml_q5_1_sg -DG_Q5_1 -DUSE_SUBGROUP
//! variant matmul_ggml_iq4_nl_sg -DG_IQ4_NL -DUSE_SUBGROUP
//! variant matmul_ggml_iq4_xs_sg -DG_IQ4_XS -DUSE_SUBGROUP
//! variant matmul_ggml_mxfp4_sg -DG_MXFP4 -DUSE_SUBGROUP
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

// Bytes per block and sub-blocks (of 32) per block.
#if defined(G_Q4_0) || defined(G_IQ4_NL)
const uint BLOCK_BYTES = 18u, SUBS = 1u;
#elif defined(G_Q5_0)
const uint BLOCK_BYTES = 22u, SUBS = 1u;
#elif defined(G_Q5_1)
const uint BLOCK_BYTES = 24u, SUBS = 1u;
#elif defined(G_IQ4_XS)
const uint BLOCK_BYTES = 136u, SUBS = 8u;
#else
const uint BLOCK_BYTES = 17u, SUBS = 1u;
#endif

#if defined(G_IQ4_NL) || defined(G_IQ4_XS)
const float LEVELS[16] = float[16](-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0,
                                   1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
#elif defined(G_MXFP4)
const float LEVELS[16] = float[16](0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0,
                                   0.0, -1.0, -2.0, -3.0, -4.0, -6.0, -8.0, -12.0);
#endif

uint read_u32(uint addr) {
    return READ_BYTE(w, addr) | (READ_BYTE(w, addr + 1u) << 8) | (READ_BYTE(w, addr + 2u) << 16) |
           (READ_BYTE(w, addr + 3u) << 24);
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
        // The host checked that rows are whole blocks (check_matmul_params).
        const uint n_subs = cols / 32u, row_bytes = n_subs / SUBS * BLOCK_BYTES;
        for (uint sb = lane; sb < n_subs; sb += LANES) {
            const uint block = r * row_bytes + (sb / SUBS) * BLOCK_BYTES;
            float scale, minimum = 0.0;
            uint qs, high = 0u;
#if defined(G_MXFP4)
            const uint e = READ_BYTE(w, block);  // 2^(e - 128), the halved e8m0 scale
            scale = e >= 2u ? uintBitsToFloat((e - 1u) << 23) : uintBitsToFloat(0x00200000u << e);
            qs = block + 1u;
#else
            scale = f16_bits_to_f32(READ_U16(w, block));
#endif
#if defined(G_Q4_0) || defined(G_IQ4_NL)
            qs = block + 2u;
#elif defined(G_Q5_0)
            high = read_u32(block + 2u);
            qs = block + 6u;
#elif defined(G_Q5_1)
            minimum = f16_bits_to_f32(READ_U16(w, block + 2u));
            high = read_u32(block + 4u);
            qs = block + 8u;
#elif defined(G_IQ4_XS)
            const uint s = sb % 8u;
            const uint ls = ((READ_BYTE(w, block + 4u + s / 2u) >> (4u * (s % 2u))) & 15u) |
                            (((READ_U16(w, block + 2u) >> (2u * s)) & 3u) << 4);
            scale *= float(int(ls) - 32);
            qs = block + 8u + 16u * s;
#endif
            float sq[NT], sx[NT];
            for (uint t = 0; t < NT; ++t) { sq[t] = 0.0; sx[t] = 0.0; }
            const uint c0 = sb * 32u;
            for (uint j = 0; j < 16u; ++j) {
                const uint byte = READ_BYTE(w, qs + j);
                uint lo = byte & 15u, hi = byte >> 4;
#if defined(G_Q4_0)
                const float wl = float(int(lo) - 8), wh = float(int(hi) - 8);
#elif defined(G_Q5_0) || defined(G_Q5_1)
                lo |= ((high >> j) & 1u) << 4;
                hi |= ((high >> (j + 16u)) & 1u) << 4;
#if defined(G_Q5_0)
                const float wl = float(int(lo) - 16), wh = float(int(hi) - 16);
#else
                const float wl = float(lo), wh = float(hi);
#endif
#else
                const float wl = LEVELS[lo], wh = LEVELS[hi];
#endif
                for (uint t = 0; t < NT; ++t) {
                    if (t >= nt) break;
                    const uint xo = (t0 + t) * cols + c0 + j;
                    const float xl = x[xo], xh = x[xo + 16u];
                    sq[t] += wl * xl + wh * xh;
#if defined(G_Q5_1)
                    sx[t] += xl + xh;
#endif
                }
            }
            for (uint t = 0; t < NT; ++t) acc[t] += scale * sq[t] + minimum * sx[t];
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
