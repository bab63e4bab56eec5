#version 450
// rms_norm of each head row (q-norm or k-norm) and rope of the normalised row in one
// dispatch, one workgroup per row (op_fusion.cpp, MST_VULKAN_ATTENTION_FUSION): the two
// dependent dispatches of norm_vec4.comp and rope.comp become one. The sum of squares and
// the normalisation are norm_vec4.comp's (the same 256 invocations and reductions), the
// rotation rope.comp's (the same table and float operations), so the result is theirs bit
// for bit. The normalised row waits in shared memory for its partner element.
// The _kv variants (op_kv_append.cpp, MST_VULKAN_KV_APPEND_FUSION) are k's norm_rope of
// one decode step that also appends the step to the attention's device KV mirror: each
// rotated value is stored to y and to its row of the K mirror, and the workgroup copies
// its head's v row (the v product's, ready a level earlier) into the V mirror, so that
// no copy command and no barrier level of its own is left for the append.
// The _qk_kv variants (MST_VULKAN_QKV_FUSION) are the _kv ones with q's norm_rope of the same
// step in the same grid: the first q_heads workgroups take q's rows (bindings 8-10, no
// append), the rest k's, each row as its own dispatch computes it (one workgroup a row), so
// that q's and k's dispatches of one level become one.
//! variant norm_rope
//! variant norm_rope_sg -DUSE_SUBGROUP
//! variant norm_rope_kv -DKV_APPEND
//! variant norm_rope_kv_sg -DUSE_SUBGROUP -DKV_APPEND
//! variant norm_rope_qk_kv -DKV_APPEND -DWITH_Q
//! variant norm_rope_qk_kv_sg -DUSE_SUBGROUP -DKV_APPEND -DWITH_Q
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
#ifdef KV_APPEND
// The mirrors are [kv head][capacity][row]; v as words, copied as they are.
layout(std430, binding = 4) writeonly buffer KMirror { float k_mirror[]; };
layout(std430, binding = 5) readonly buffer VRows { uint v_rows[]; };  // [token][kv head][v_dim]
layout(std430, binding = 6) writeonly buffer VMirror { uint v_mirror[]; };
// The step's position, read from memory and not a push constant, so that consecutive
// decode steps record the same command (CommandStream's replay).
layout(std430, binding = 7) readonly buffer Step { uint pos0; };

#ifdef WITH_Q
// q's rows, its norm weight and its result (q_heads rows of dim, one token).
layout(std430, binding = 8) readonly buffer QX { vec4 qx[]; };
layout(std430, binding = 9) readonly buffer QW { vec4 qw[]; };
layout(std430, binding = 10) writeonly buffer QY { float qy[]; };
#endif

layout(push_constant) uniform Push {
    uint dim, n_heads, half_dim, interleaved;
    float eps, offset;
    uint capacity, v_dim;
#ifdef WITH_Q
    uint q_heads;
#endif
} pc;
#else
layout(push_constant) uniform Push { uint dim, n_heads, half_dim, interleaved; float eps, offset; } pc;
#endif

#ifdef WITH_Q
bool is_q;  // this workgroup's row is q's (uniform over the workgroup)
#define X_AT(i) (is_q ? qx[i] : x[i])
#define W_AT(i) (is_q ? qw[i] : w[i])
#else
const bool is_q = false;
#define X_AT(i) x[i]
#define W_AT(i) w[i]
#endif

// Stores one value of the rotated row (and, appending k's, its K mirror copy).
void store(uint base, uint mirror_base, uint j, float value) {
#ifdef WITH_Q
    if (is_q) {
        qy[base + j] = value;
        return;
    }
#endif
    y[base + j] = value;
#ifdef KV_APPEND
    k_mirror[mirror_base + j] = value;
#endif
}

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
#ifdef WITH_Q
    const uint g = gl_WorkGroupID.x + gl_WorkGroupID.y * 65535u;
    is_q = g < pc.q_heads;
    const uint r = is_q ? g : g - pc.q_heads;  // token * heads + head of q's rows or k's
    const uint heads = is_q ? pc.q_heads : pc.n_heads;
#else
    const uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * 65535u;  // token * n_heads + head
    const uint heads = pc.n_heads;
#endif
    const uint tid = gl_LocalInvocationID.x;
    const uint d4 = pc.dim / 4u, base4 = r * d4;
    vec4 v[PER];
    float s = 0.0;
    for (uint i = 0u; i < PER; ++i) {
        const uint c = tid + i * THREADS;
        v[i] = c < d4 ? X_AT(base4 + c) : vec4(0.0);
    }
    for (uint i = 0u; i < PER; ++i) s += dot(v[i], v[i]);
    const float inv = inversesqrt(row_sum(s) / float(pc.dim) + pc.eps);
    for (uint i = 0u; i < PER; ++i) {
        const uint c = tid + i * THREADS;
        if (c >= d4) break;
        const vec4 n = v[i] * inv * (pc.offset + W_AT(c));
        row[4u * c] = n.x;
        row[4u * c + 1u] = n.y;
        row[4u * c + 2u] = n.z;
        row[4u * c + 3u] = n.w;
    }
    barrier();
    const uint t = r / heads, base = r * pc.dim;
#ifdef KV_APPEND
    const uint slot = (r % pc.n_heads) * pc.capacity + pos0 + t;  // the row's position in its head
    const uint mirror_base = slot * pc.dim;
    if (!is_q)
        for (uint j = tid; j < pc.v_dim; j += THREADS) v_mirror[slot * pc.v_dim + j] = v_rows[r * pc.v_dim + j];
#else
    const uint mirror_base = 0u;
#endif
    for (uint i = tid; i < pc.half_dim; i += THREADS) {
        const uint a = pc.interleaved != 0u ? 2u * i : i;
        const uint b = pc.interleaved != 0u ? a + 1u : a + pc.half_dim;
        const float c = cs[(t * pc.half_dim + i) * 2u], sn = cs[(t * pc.half_dim + i) * 2u + 1u];
        const float x0 = row[a], x1 = row[b];
        store(base, mirror_base, a, x0 * c - x1 * sn);
        store(base, mirror_base, b, x1 * c + x0 * sn);
    }
    for (uint j = 2u * pc.half_dim + tid; j < pc.dim; j += THREADS) store(base, mirror_base, j, row[j]);
}
