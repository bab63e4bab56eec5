#version 450
// y[t][r] = sum_c W[r][c] x[t][c] for every stored weight type (one variant each).
// A workgroup is ROWS rows x LANES lanes and a tile of NT tokens (gl_WorkGroupID.y). The
// lanes of a row walk the row in units (4 elements of a float type, one 32-weight block
// of a block type), decoding each weight once for all NT tokens, then add their partial
// sums: with subgroupAdd when a row is one subgroup (the _sg variants; LANES is then the
// subgroup size), else through shared memory.
//! variant matmul_f32 -DW_F32
//! variant matmul_f16 -DW_F16
//! variant matmul_bf16 -DW_BF16
//! variant matmul_q8 -DW_Q8
//! variant matmul_q4 -DW_Q4
//! variant matmul_mxfp4 -DW_MXFP4
//! variant matmul_fp8 -DW_FP8
//! variant matmul_i4 -DW_I4
//! variant matmul_i8 -DW_I8
//! variant matmul_f32_sg -DW_F32 -DUSE_SUBGROUP
//! variant matmul_f16_sg -DW_F16 -DUSE_SUBGROUP
//! variant matmul_bf16_sg -DW_BF16 -DUSE_SUBGROUP
//! variant matmul_q8_sg -DW_Q8 -DUSE_SUBGROUP
//! variant matmul_q4_sg -DW_Q4 -DUSE_SUBGROUP
//! variant matmul_mxfp4_sg -DW_MXFP4 -DUSE_SUBGROUP
//! variant matmul_fp8_sg -DW_FP8 -DUSE_SUBGROUP
//! variant matmul_i4_sg -DW_I4 -DUSE_SUBGROUP
//! variant matmul_i8_sg -DW_I8 -DUSE_SUBGROUP
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
// The same buffers as 16-byte vectors, for rows whose length keeps them 16-byte aligned:
// one load brings a lane 8 f16/bf16 or 4 f32 weights, so a subgroup reads 512 contiguous
// bytes at a time.
layout(std430, binding = 0) readonly buffer Weights4 { uvec4 w4[]; };
layout(std430, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
// MXFP4: the e8m0 scale bytes [rows][cols / 32]. FP8: float32 scales [rows / br][cols / bc].
// I4 / I8 (compressed-tensors pack-quantized, core/packed_int.h): bf16 scales [rows][groups].
layout(std430, binding = 3) readonly buffer Aux { uint aux[]; };

layout(push_constant) uniform Push {
    uint rows, cols, n_tokens;
    uint block_rows, block_cols, scale_cols;  // FP8; I4 / I8: block_cols = group size, scale_cols = groups
} pc;

#ifndef USE_SUBGROUP
shared float partial[ROWS][NT][LANES];
#endif

float acc[NT];
uint t0, nt;

void add_product(float wv, uint c) {
    for (uint t = 0; t < NT; ++t)
        if (t < nt) acc[t] += wv * x[(t0 + t) * pc.cols + c];
}

void main() {
    const uint lane = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y;
    const uint r = gl_WorkGroupID.x * ROWS + ly;
    t0 = gl_WorkGroupID.y * NT;
    nt = min(uint(NT), pc.n_tokens - t0);
    for (uint t = 0; t < NT; ++t) acc[t] = 0.0;
    const uint cols = pc.cols;

#if defined(W_F16) || defined(W_BF16)
    const bool vec_path = cols % 8u == 0u;
    if (r < pc.rows && vec_path) {
        const uint n_units = cols / 8u, base = r * n_units;
        for (uint u = lane; u < n_units; u += LANES) {
            const uvec4 q = w4[base + u];
            float wv[8];
            for (uint k = 0; k < 4u; ++k) {
                const uint word = q[k];
#if defined(W_F16)
                const vec2 h = unpackHalf2x16(word);
                wv[2u * k] = h.x;
                wv[2u * k + 1u] = h.y;
#else
                wv[2u * k] = uintBitsToFloat(word << 16);
                wv[2u * k + 1u] = uintBitsToFloat(word & 0xffff0000u);
#endif
            }
            for (uint t = 0; t < NT; ++t) {
                if (t >= nt) break;
                const uint xb = ((t0 + t) * cols) / 4u + 2u * u;
                const vec4 a = x4[xb], b = x4[xb + 1u];
                acc[t] += dot(vec4(wv[0], wv[1], wv[2], wv[3]), a) + dot(vec4(wv[4], wv[5], wv[6], wv[7]), b);
            }
        }
    }
#elif defined(W_F32)
    const bool vec_path = cols % 4u == 0u;
    if (r < pc.rows && vec_path) {
        const uint n_units = cols / 4u, base = r * n_units;
        for (uint u = lane; u < n_units; u += LANES) {
            const vec4 wv = uintBitsToFloat(w4[base + u]);
            for (uint t = 0; t < NT; ++t) {
                if (t >= nt) break;
                acc[t] += dot(wv, x4[((t0 + t) * cols) / 4u + u]);
            }
        }
    }
#elif defined(W_Q4)
    // Rows of whole blocks: four lanes share a block, each taking 8 of its weights (lane
    // part p: elements 8p..8p+7, the low nibbles of bytes 8p.. for p < 2, the high
    // nibbles of bytes 8(p - 2).. above), so a subgroup reads whole blocks and 32 * 8
    // consecutive activations at once instead of one element per lane 128 bytes apart.
    const bool vec_path = cols % 32u == 0u;
    if (r < pc.rows && vec_path) {
        const uint n_blocks = cols / 32u, part = lane & 3u, shift = (part >> 1) * 4u;
        const uint row_words = n_blocks * 5u;
        for (uint b = lane >> 2; b < n_blocks; b += LANES / 4u) {
            const uint wb = r * row_words + b * 5u;
            const uint dm = w[wb];
            const uint q0 = w[wb + 1u + 2u * (part & 1u)], q1 = w[wb + 2u + 2u * (part & 1u)];
            const vec4 wa = vec4(float((q0 >> shift) & 15u), float((q0 >> (shift + 8u)) & 15u),
                                 float((q0 >> (shift + 16u)) & 15u), float((q0 >> (shift + 24u)) & 15u));
            const vec4 wc = vec4(float((q1 >> shift) & 15u), float((q1 >> (shift + 8u)) & 15u),
                                 float((q1 >> (shift + 16u)) & 15u), float((q1 >> (shift + 24u)) & 15u));
            const float d = f16_bits_to_f32(dm & 0xffffu), m = f16_bits_to_f32(dm >> 16);
            for (uint t = 0; t < NT; ++t) {
                if (t >= nt) break;
                const uint xb = ((t0 + t) * cols + b * 32u + part * 8u) / 4u;
                const vec4 a = x4[xb], c = x4[xb + 1u];
                acc[t] += d * (dot(wa, a) + dot(wc, c)) + m * (dot(a, vec4(1.0)) + dot(c, vec4(1.0)));
            }
        }
    }
#else
    const bool vec_path = false;
#endif
    if (r < pc.rows && !vec_path) {
#if defined(W_F32) || defined(W_F16) || defined(W_BF16) || defined(W_FP8)
        const uint n_units = (cols + 3u) / 4u;
        const uint base = r * cols;
        for (uint u = lane; u < n_units; u += LANES) {
            for (uint k = 0; k < 4u; ++k) {
                const uint c = u * 4u + k;
                if (c >= cols) break;
                const uint e = base + c;
#if defined(W_F32)
                const float wv = uintBitsToFloat(w[e]);
#elif defined(W_F16)
                const float wv = f16_bits_to_f32((w[e >> 1] >> ((e & 1u) * 16u)) & 0xffffu);
#elif defined(W_BF16)
                const float wv = bf16_bits_to_f32((w[e >> 1] >> ((e & 1u) * 16u)) & 0xffffu);
#else
                const float s = uintBitsToFloat(aux[(r / pc.block_rows) * pc.scale_cols + c / pc.block_cols]);
                const float wv = fp8_e4m3_to_f32(READ_BYTE(w, e)) * s;
#endif
                add_product(wv, c);
            }
        }
#elif defined(W_Q8)
        const uint n_blocks = (cols + 31u) / 32u;
        const uint row_bytes = n_blocks * 34u;
        for (uint b = lane; b < n_blocks; b += LANES) {
            const uint addr = r * row_bytes + b * 34u;
            const float d = f16_bits_to_f32(READ_U16(w, addr));
            float s[NT];
            for (uint t = 0; t < NT; ++t) s[t] = 0.0;
            for (uint k = 0; k < 16u; ++k) {
                const uint pair = READ_U16(w, addr + 2u + 2u * k);
                const uint c = b * 32u + 2u * k;
                const float q0 = float(int(pair << 24) >> 24), q1 = float(int(pair << 16) >> 24);
                for (uint t = 0; t < NT; ++t) {
                    if (t >= nt) break;
                    const uint xo = (t0 + t) * cols;
                    if (c < cols) s[t] += q0 * x[xo + c];
                    if (c + 1u < cols) s[t] += q1 * x[xo + c + 1u];
                }
            }
            for (uint t = 0; t < NT; ++t) acc[t] += d * s[t];
        }
#elif defined(W_Q4)
        // 20-byte blocks: d and m, then byte j = element j (low nibble) and j + 16 (high).
        const uint n_blocks = (cols + 31u) / 32u;
        const uint row_words = n_blocks * 5u;
        for (uint b = lane; b < n_blocks; b += LANES) {
            const uint wb = r * row_words + b * 5u;
            const uint dm = w[wb];
            const float d = f16_bits_to_f32(dm & 0xffffu), m = f16_bits_to_f32(dm >> 16);
            const uint c0 = b * 32u;
            float sq[NT], sx[NT];
            for (uint t = 0; t < NT; ++t) { sq[t] = 0.0; sx[t] = 0.0; }
            if (c0 + 32u <= cols) {
                for (uint k = 0; k < 4u; ++k) {
                    const uint q = w[wb + 1u + k];
                    for (uint j = 0; j < 4u; ++j) {
                        const uint byte = (q >> (8u * j)) & 0xffu;
                        const float lo = float(byte & 15u), hi = float(byte >> 4);
                        const uint c = c0 + 4u * k + j;
                        for (uint t = 0; t < NT; ++t) {
                            if (t >= nt) break;
                            const uint xo = (t0 + t) * cols;
                            const float xl = x[xo + c], xh = x[xo + c + 16u];
                            sq[t] += lo * xl + hi * xh;
                            sx[t] += xl + xh;
                        }
                    }
                }
            } else {
                for (uint j = 0; j < 16u; ++j) {
                    const uint byte = (w[wb + 1u + j / 4u] >> (8u * (j & 3u))) & 0xffu;
                    const uint c = c0 + j;
                    for (uint t = 0; t < NT; ++t) {
                        if (t >= nt) break;
                        const uint xo = (t0 + t) * cols;
                        if (c < cols) { sq[t] += float(byte & 15u) * x[xo + c]; sx[t] += x[xo + c]; }
                        if (c + 16u < cols) { sq[t] += float(byte >> 4) * x[xo + c + 16u]; sx[t] += x[xo + c + 16u]; }
                    }
                }
            }
            for (uint t = 0; t < NT; ++t) acc[t] += d * sq[t] + m * sx[t];
        }
#elif defined(W_MXFP4)
        // cols is a multiple of 32: 16 bytes (4 words) of nibbles per block, element 2j in
        // the low nibble of byte j; one e8m0 scale byte per block.
        const float fp4[16] = float[16](0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
                                        -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0);
        const uint n_blocks = cols / 32u;
        for (uint b = lane; b < n_blocks; b += LANES) {
            const uint wb = (r * n_blocks + b) * 4u;
            const uint e = READ_BYTE(aux, r * n_blocks + b);
            const float scale = e == 0u ? uintBitsToFloat(0x00400000u) : uintBitsToFloat(e << 23);
            float s[NT];
            for (uint t = 0; t < NT; ++t) s[t] = 0.0;
            for (uint k = 0; k < 4u; ++k) {
                const uint q = w[wb + k];
                for (uint j = 0; j < 8u; ++j) {
                    const float wv = fp4[(q >> (4u * j)) & 15u];
                    const uint c = b * 32u + 8u * k + j;
                    for (uint t = 0; t < NT; ++t)
                        if (t < nt) s[t] += wv * x[(t0 + t) * cols + c];
                }
            }
            for (uint t = 0; t < NT; ++t) acc[t] += scale * s[t];
        }
#elif defined(W_I4) || defined(W_I8)
        // A lane takes whole groups: their integer dot products summed, then scaled once.
        // Value c of a row is in word c / PER_WORD at bits BITS * (c % PER_WORD), stored
        // as q + 2^(BITS - 1); rows are padded to whole words.
#if defined(W_I4)
        const uint BITS = 4u;
#else
        const uint BITS = 8u;
#endif
        const uint PER_WORD = 32u / BITS, MASK = (1u << BITS) - 1u;
        const int OFFSET = int(1u << (BITS - 1u));
        const uint row_words = (cols + PER_WORD - 1u) / PER_WORD;
        const uint group = pc.block_cols, groups = pc.scale_cols;
        for (uint g = lane; g < groups; g += LANES) {
            const float scale = bf16_bits_to_f32(READ_U16(aux, 2u * (r * groups + g)));
            float s[NT];
            for (uint t = 0; t < NT; ++t) s[t] = 0.0;
            const uint c0 = g * group;
            if (group % PER_WORD == 0u) {
                for (uint wi = c0 / PER_WORD; wi < (c0 + group) / PER_WORD; ++wi) {
                    const uint q = w[r * row_words + wi];
                    for (uint j = 0; j < PER_WORD; ++j) {
                        const float wv = float(int((q >> (BITS * j)) & MASK) - OFFSET);
                        const uint c = wi * PER_WORD + j;
                        for (uint t = 0; t < NT; ++t)
                            if (t < nt) s[t] += wv * x[(t0 + t) * cols + c];
                    }
                }
            } else {
                for (uint c = c0; c < c0 + group; ++c) {
                    const uint q = w[r * row_words + c / PER_WORD];
                    const float wv = float(int((q >> (BITS * (c % PER_WORD))) & MASK) - OFFSET);
                    for (uint t = 0; t < NT; ++t)
                        if (t < nt) s[t] += wv * x[(t0 + t) * cols + c];
                }
            }
            for (uint t = 0; t < NT; ++t) acc[t] += scale * s[t];
        }
#endif
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
