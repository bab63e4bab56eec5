// Shared by the prefill GEMMs (gemm.comp: main's kernels; gemm_tuned.comp: the tuned
// cooperative-matrix tiling): the bindings, the push constants, the grouped tile table and
// the loaders that decode 8 weights or activations to float. The includer defines BN.
layout(std430, binding = 0) readonly buffer Weights { uint w[]; };
layout(std430, binding = 0) readonly buffer Weights4 { uvec4 w4[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

#ifdef GROUPED
// (first word of the expert's weights, first token row, token count, first word of its
// up weights under SWIGLU) per tile.
layout(std430, binding = 3) readonly buffer Tiles { uvec4 tiles[]; };
#endif

layout(push_constant) uniform Push { uint rows, cols, n_tokens; } pc;

// The workgroup's weights start at word wbase of the bound buffer (a multiple of 4, so
// that the uvec4 loads stay whole), its tokens at row t_base, and it has n_tok of them.
uint wbase = 0u, t_base = 0u, n_tok = 0u, up_base = 0u;

// Sets the above; the tile's first token relative to t_base.
uint select_tile() {
#ifdef GROUPED
    const uvec4 tile = tiles[gl_WorkGroupID.y];
    wbase = tile.x;
    t_base = tile.y;
    n_tok = tile.z;
    up_base = tile.w;
    return 0u;
#else
    n_tok = pc.n_tokens;
    return gl_WorkGroupID.y * BN;
#endif
}

// Elements c0 .. c0 + 7 of weight row r (c0 a multiple of 8; zero past the row's end).
void load_weights8(uint r, uint c0, out float v[8]) {
    const uint cols = pc.cols;
#if defined(W_F32)
    if (cols % 4u == 0u && c0 + 8u <= cols) {
        const uint u = (wbase + r * cols + c0) / 4u;
        const vec4 a = uintBitsToFloat(w4[u]), b = uintBitsToFloat(w4[u + 1u]);
        v = float[8](a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
        return;
    }
    for (uint i = 0; i < 8u; ++i) {
        v[i] = 0.0;
        if (c0 + i < cols) v[i] = uintBitsToFloat(w[wbase + r * cols + c0 + i]);
    }
#elif defined(W_F16) || defined(W_BF16)
    if (cols % 8u == 0u && c0 < cols) {
        const uvec4 q = w4[wbase / 4u + (r * cols + c0) / 8u];
        for (uint k = 0; k < 4u; ++k) {
#if defined(W_F16)
            const vec2 h = unpackHalf2x16(q[k]);
            v[2u * k] = h.x;
            v[2u * k + 1u] = h.y;
#else
            v[2u * k] = uintBitsToFloat(q[k] << 16);
            v[2u * k + 1u] = uintBitsToFloat(q[k] & 0xffff0000u);
#endif
        }
        return;
    }
    for (uint i = 0; i < 8u; ++i) {
        v[i] = 0.0;
        if (c0 + i >= cols) continue;
        const uint e = r * cols + c0 + i;
        const uint h = (w[wbase + (e >> 1)] >> ((e & 1u) * 16u)) & 0xffffu;
#if defined(W_F16)
        v[i] = f16_bits_to_f32(h);
#else
        v[i] = bf16_bits_to_f32(h);
#endif
    }
#elif defined(W_Q4)
    // 20-byte blocks (d, m as f16, then byte j = element j low nibble, j + 16 high):
    // part p of a block holds elements 8p .. 8p + 7, low nibbles of bytes 8p.. for p < 2,
    // high nibbles of bytes 8(p - 2).. above. Rows are whole blocks (padding decodes to
    // finite values that meet zero activations).
    const uint n_blocks = (cols + 31u) / 32u, b = c0 / 32u, part = (c0 / 8u) & 3u, shift = (part >> 1) * 4u;
    const uint wb = wbase + r * n_blocks * 5u + b * 5u;
    const uint dm = w[wb];
    const float d = f16_bits_to_f32(dm & 0xffffu), m = f16_bits_to_f32(dm >> 16);
    const uint q0 = w[wb + 1u + 2u * (part & 1u)], q1 = w[wb + 2u + 2u * (part & 1u)];
    for (uint i = 0; i < 4u; ++i) {
        v[i] = d * float((q0 >> (shift + 8u * i)) & 15u) + m;
        v[4u + i] = d * float((q1 >> (shift + 8u * i)) & 15u) + m;
    }
#elif defined(W_Q8)
    // 34-byte blocks: d as f16, then 32 signed bytes.
    const uint n_blocks = (cols + 31u) / 32u, b = c0 / 32u, part = (c0 / 8u) & 3u;
    const uint addr = wbase * 4u + r * n_blocks * 34u + b * 34u;
    const float d = f16_bits_to_f32(READ_U16(w, addr));
    for (uint i = 0; i < 4u; ++i) {
        const uint pair = READ_U16(w, addr + 2u + 8u * part + 2u * i);
        v[2u * i] = d * float(int(pair << 24) >> 24);
        v[2u * i + 1u] = d * float(int(pair << 16) >> 24);
    }
#endif
}

// Activations c0 .. c0 + 7 of token t (after t_base; zero past the row's end).
void load_x8(uint t, uint c0, out float v[8]) {
    const uint cols = pc.cols;
    t += t_base;
    if (cols % 4u == 0u && c0 + 8u <= cols) {
        const uint u = (t * cols + c0) / 4u;
        const vec4 a = x4[u], b = x4[u + 1u];
        v = float[8](a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
        return;
    }
    for (uint i = 0; i < 8u; ++i) {
        v[i] = 0.0;
        if (c0 + i < cols) v[i] = x[t * cols + c0 + i];
    }
}

