#version 450
// Softmax top-k routing by rank (router/softmax_topk.h's contract; MST_VULKAN_MOE_FUSION,
// docs/gpu_decode_kernels.md "The MoE half of a layer in fewer dispatches"): for token t,
// p = softmax of its logits, the k largest p (ties to the lower id, as the CPU's
// partial_sort and torch.topk), their ids and p, or p / sum of the kept p when
// renormalising. One workgroup per token.
// softmax_topk.comp picks the k experts in k passes over every expert, each ending in a
// six-barrier tree (14.5 us for 128 experts on an H100); here every lane ranks its own
// experts at once: expert e's rank is the number of experts before it in (p descending,
// id ascending), a total order, so the experts of rank < k are the top k and each writes
// its own slot, with one barrier after the probabilities are in shared memory.
// Same bits as softmax_topk.comp: the maximum, the sum (the same lanes' partials and the
// same tree) and each p are computed as there, and the kept sum adds the chosen p in rank
// order. An expert whose p is NaN ranks nowhere (as there: it is never picked); slots no
// expert fills keep id -1 and weight -1, which routed_swiglu_by_id reports as a miss.
// 128 lanes: the maximum and the sum take the first 64 (softmax_topk.comp's lanes and tree,
// for the same bits), the ranking all of them (one expert each for 128 experts).
// Latency, not bytes, is this kernel's time (15 us on the H100 for 128 scores), so: the
// logits are read from memory once, into the tree lanes' registers (their loads issued
// together), and each exp is computed once; the chosen ids and p are gathered in shared
// memory and written out once, so no memory fence waits between the slots' -1 and them; the
// max and sum trees are the same pairwise operations in the same order, but every lane
// computes them itself from the 64 partials in registers (one barrier each instead of a
// barrier a level); the renormalising sum takes the chosen p from shared memory, not back
// from the weights buffer, and every lane divides its own slot.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer Logits { float logits[]; };
layout(std430, binding = 1) buffer Ids { int ids[]; };
layout(std430, binding = 2) buffer Weights { float weights[]; };

layout(push_constant) uniform Push { uint n_tokens, n_experts, k, renormalize; } pc;

#define TOPK_LOGITS logits
#include "softmax_topk_rank.glsl"

void main() {
    const uint t = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (t >= pc.n_tokens) return;  // uniform over the workgroup
    softmax_topk_rank(t, gl_LocalInvocationID.x, pc.n_experts, pc.k, pc.renormalize != 0u);
}
