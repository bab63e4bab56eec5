#version 450
// Last step of grouping a batch's routed experts on the device (op_experts_device_grouped.cpp),
// one invocation per token: each of its k choices gets its row among the rows in expert
// order (the expert's first row + the choice's rank), whose source row of h is the token
// (rows, read by gather_rows.comp); and the token's uses for combine.comp, (row, weight
// bits) in ascending expert id, the order the CPU and the host-built grouping add them in.
// An id outside [0, n_experts) or an expert without a slot records the first such
// (layer, id) in `miss` (as matvec_id.comp does): the batch's results are then an error.
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Ids { int ids[]; };
layout(std430, binding = 1) readonly buffer Weights { uint weight_bits[]; };
layout(std430, binding = 2) readonly buffer Ranks { uint ranks[]; };
layout(std430, binding = 3) readonly buffer Offsets { uint offsets[]; };
layout(std430, binding = 4) readonly buffer Slots { int slots[]; };
layout(std430, binding = 5) writeonly buffer Rows { uint rows[]; };
layout(std430, binding = 6) writeonly buffer Uses { uint uses[]; };
layout(std430, binding = 7) writeonly buffer TokenUses { uint token_uses[]; };
layout(std430, binding = 8) buffer Miss { uint miss; };

layout(push_constant) uniform Push { uint n_tokens, k, n_experts, layer; } pc;

void main() {
    const uint t = gl_GlobalInvocationID.x;
    if (t >= pc.n_tokens) return;
    const uint s0 = t * pc.k;
    for (uint j = 0u; j < pc.k; ++j) {
        const int id = ids[s0 + j];
        const bool valid = id >= 0 && id < int(pc.n_experts);
        const uint row = offsets[valid ? uint(id) : pc.n_experts] + ranks[s0 + j];
        rows[row] = t;
        if (!valid || slots[id] < 0) atomicCompSwap(miss, 0u, 1u + (pc.layer << 16) + (uint(id) & 0xffffu));
        // Its place among the token's choices in ascending id (ties, only between invalid
        // ids, in choice order).
        uint place = 0u;
        for (uint i = 0u; i < pc.k; ++i) {
            const int other = ids[s0 + i];
            if (other < id || (other == id && i < j)) ++place;
        }
        uses[2u * (s0 + place)] = row;
        uses[2u * (s0 + place) + 1u] = weight_bits[s0 + j];
    }
    token_uses[t] = s0;
    if (t + 1u == pc.n_tokens) token_uses[pc.n_tokens] = s0 + pc.k;
}
