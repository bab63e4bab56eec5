#version 450
// The last step of routed_swiglu_by_id (one token, experts chosen on the device):
// out[c] += sum over the k chosen experts, in ascending expert id (the order
// routed_swiglu and the CPU backend add them in), of weights[j] * y[j][c], in one of the two
// forms matvec_id_combine.comp computes (the same bits as it):
//   residual 0:  out[c] = out[c] + w_1 y_1 + w_2 y_2 ...   (one expert at a time)
//   residual 1:  out[c] = out[c] + s, s summed from 0        (the residual add of a layer)
// Latency: the kernel moves little data, so its time is its chain of memory round trips.
// Finding an expert and then loading its y and weight before finding the next would cost
// one L2 round trip per expert. Instead the first CHUNK positions' y and weights (every
// expert where k <= CHUNK) are loaded with the ids, before the order is known; then the
// next CHUNK experts in ascending id are found from the ids alone, the y and weights of
// any past the first CHUNK positions loaded together, and all added in that order: the
// same operations as one expert at a time. 64 invocations a workgroup spread a 2048-wide
// hidden over 32 workgroups (multiprocessors) rather than 8: each invocation's output is
// its own, so the bits do not depend on it.
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x = 64) in;  // op_experts_by_id.cpp's dispatch

#define CHUNK 8  // experts whose loads are issued together (k any: a loop of chunks)

layout(std430, binding = 0) readonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer Ids { int ids[]; };
layout(std430, binding = 2) readonly buffer Weights { float weights[]; };
layout(std430, binding = 3) buffer Out { float o[]; };

layout(push_constant) uniform Push { uint k, hidden, residual; } pc;

// The position of the smallest id above `last` (ids are distinct), the first where equal,
// and that id in `best` (0x7fffffff where none is); the ids read CHUNK at a time, the
// reads issued before the comparisons (the same for every invocation: cached after the
// first round).
uint next_expert(int last, out int best) {
    uint pick = 0u;
    best = 0x7fffffff;
    for (uint j0 = 0u; j0 < pc.k; j0 += CHUNK) {
        int id[CHUNK];
        [[unroll]] for (uint u = 0u; u < CHUNK; ++u) id[u] = ids[min(j0 + u, pc.k - 1u)];
        [[unroll]] for (uint u = 0u; u < CHUNK; ++u) {
            if (j0 + u < pc.k && id[u] > last && id[u] < best) {
                best = id[u];
                pick = j0 + u;
            }
        }
    }
    return pick;
}

void main() {
    const uint c = gl_GlobalInvocationID.x;
    if (c >= pc.hidden) return;
    float acc = pc.residual != 0u ? 0.0 : o[c];
    // The first CHUNK positions' weights and y (every expert where k <= CHUNK) load with the
    // ids, before their order is known, so that the two round trips overlap.
    float w0[CHUNK], y0[CHUNK];
    [[unroll]] for (uint u = 0u; u < CHUNK; ++u) {
        const uint j = min(u, pc.k - 1u);  // past k: the last expert's, unused
        w0[u] = weights[j];
        y0[u] = y[j * pc.hidden + c];
    }
    int last = -1;
    for (uint m0 = 0u; m0 < pc.k; m0 += CHUNK) {
        // The chunk's experts in ascending id: the j-th smallest id each round (k^2 steps
        // in all, k is small); a round past k or past the last id takes none.
        uint pick[CHUNK];
        bool take[CHUNK];
        [[unroll]] for (uint i = 0u; i < CHUNK; ++i) {
            pick[i] = 0u;
            take[i] = false;
            if (m0 + i < pc.k) {
                int best;
                pick[i] = next_expert(last, best);
                take[i] = best != 0x7fffffff;
                if (take[i]) last = best;
            }
        }
        // Their weights and y: of the first CHUNK positions from registers (a select, not an
        // indexed array), of later ones loaded together; then the adds.
        float w[CHUNK], yc[CHUNK];
        [[unroll]] for (uint i = 0u; i < CHUNK; ++i) {
            w[i] = w0[0];
            yc[i] = y0[0];
            [[unroll]] for (uint u = 1u; u < CHUNK; ++u) {
                if (pick[i] == u) {
                    w[i] = w0[u];
                    yc[i] = y0[u];
                }
            }
            if (pick[i] >= CHUNK) {
                w[i] = weights[pick[i]];
                yc[i] = y[pick[i] * pc.hidden + c];
            }
        }
        [[unroll]] for (uint i = 0u; i < CHUNK; ++i)
            if (take[i]) acc += w[i] * yc[i];
    }
    o[c] = pc.residual != 0u ? o[c] + acc : acc;
}
