#version 450
// rms_norm of each head row (q-norm or k-norm) and rope of the normalised row in one
// dispatch, one workgroup per row (op_fusion.cpp, MST_VULKAN_ATTENTION_FUSION): the two
// dependent dispatches of norm_vec4.comp and rope.comp become one. The sum of squares and
// the normalisation are norm_vec4.comp's (the same 256 invocations and reductions), the
// rotation rope.comp's (the same table and float operations), so the result is theirs bit
// for bit. The normalised row waits in shared memory for its partner element.
//! variant norm_rope
//! variant norm_rope_sg -DUSE_SUBGROUP
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

#define THREADS 256
#define PER 4
#define MAX_DIM 1024  // op_fusion.cpp takes head rows up to this wide
layout(local_size_x = THREADS) in;

layout(std430, binding = 0) readonly buffer X { vec4 x[]; };
layout(std430, binding = 1) readonly buffer W { vec4 w[]; };
layout(std430, binding = 2) readonly buffer Table { float cs[]; };  // [n_tokens][half][2]: cos, sin
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push { uint dim, n_heads, half_dim, interleaved; float eps, offset; } pc;

shared float partial[THREADS];
shared float row[MAX_DIM];

float row_sum(float s) {
    const uint tid = gl_LocalInvocationID.x;
#ifdef USE_SUBGROUP
    s = subgroupAdd(s);
    if (subgroupElect()) partial[gl_SubgroupID] = s;
    barrier();
    float r = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; ++i) r += partial[i];
    return r;
#else
    partial[tid] = s;
    barrier();
    for (uint k = THREADS / 2u; k > 0u; k >>= 1) {
        if (tid < k) partial[tid] += partial[tid + k];
        barrier();
    }
    return partial[0];
#endif
}

void main() {
    const uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * 65535u;  // token * n_heads + head
    const uint tid = gl_LocalInvocationID.x;
    const uint d4 = pc.dim / 4u, base4 = r * d4;
    vec4 v[PER];
    float s = 0.0;
    for (uint i = 0u; i < PER; ++i) {
        const uint c = tid + i * THREADS;
        v[i] = c < d4 ? x[base4 + c] : vec4(0.0);
    }
    for (uint i = 0u; i < PER; ++i) s += dot(v[i], v[i]);
    const float inv = inversesqrt(row_sum(s) / float(pc.dim) + pc.eps);
    for (uint i = 0u; i < PER; ++i) {
        const uint c = tid + i * THREADS;
        if (c >= d4) break;
        const vec4 n = v[i] * inv * (pc.offset + w[c]);
        row[4u * c] = n.x;
        row[4u * c + 1u] = n.y;
        row[4u * c + 2u] = n.z;
        row[4u * c + 3u] = n.w;
    }
    barrier();
    const uint t = r / pc.n_heads, base = r * pc.dim;
    for (uint i = tid; i < pc.half_dim; i += THREADS) {
        const uint a = pc.interleaved != 0u ? 2u * i : i;
        const uint b = pc.interleaved != 0u ? a + 1u : a + pc.half_dim;
        const float c = cs[(t * pc.half_dim + i) * 2u], sn = cs[(t * pc.half_dim + i) * 2u + 1u];
        const float x0 = row[a], x1 = row[b];
        y[base + a] = x0 * c - x1 * sn;
        y[base + b] = x1 * c + x0 * sn;
    }
    for (uint j = 2u * pc.half_dim + tid; j < pc.dim; j += THREADS) y[base + j] = row[j];
}
