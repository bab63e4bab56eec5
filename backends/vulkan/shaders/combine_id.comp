#version 450
// The last step of routed_swiglu_by_id (one token, experts chosen on the device):
// out[c] += sum over the k chosen experts, in ascending expert id (the order
// routed_swiglu and the CPU backend add them in), of weights[j] * y[j][c], in one of the two
// forms matvec_id_combine.comp computes (the same bits as it):
//   residual 0:  out[c] = out[c] + w_1 y_1 + w_2 y_2 ...   (one expert at a time)
//   residual 1:  out[c] = out[c] + s, s summed from 0        (the residual add of a layer)
layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer Ids { int ids[]; };
layout(std430, binding = 2) readonly buffer Weights { float weights[]; };
layout(std430, binding = 3) buffer Out { float o[]; };

layout(push_constant) uniform Push { uint k, hidden, residual; } pc;

void main() {
    const uint c = gl_GlobalInvocationID.x;
    if (c >= pc.hidden) return;
    float acc = pc.residual != 0u ? 0.0 : o[c];
    // The j-th smallest id each round (ids are distinct): k is small (top-8), k^2 steps.
    int last = -1;
    for (uint m = 0u; m < pc.k; ++m) {
        uint pick = 0u;
        int best = 0x7fffffff;
        for (uint j = 0u; j < pc.k; ++j) {
            const int id = ids[j];
            if (id > last && id < best) {
                best = id;
                pick = j;
            }
        }
        if (best == 0x7fffffff) break;
        acc += weights[pick] * y[pick * pc.hidden + c];
        last = best;
    }
    o[c] = pc.residual != 0u ? o[c] + acc : acc;
}
