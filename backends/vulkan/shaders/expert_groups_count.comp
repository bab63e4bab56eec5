#version 450
// First step of grouping a batch's routed experts on the device (op_experts_device_grouped.cpp):
// workgroup e counts the choices of expert e among the batch's n * k router ids and gives
// each its rank among them in id order (so in token order, the order the host's routing
// inversion gives an expert's tokens). Workgroup n_experts takes every id outside
// [0, n_experts): a miss, whose rows exist but which no expert computes.
layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer Ids { int ids[]; };
layout(std430, binding = 1) writeonly buffer Ranks { uint ranks[]; };
layout(std430, binding = 2) writeonly buffer Counts { uint counts[]; };

layout(push_constant) uniform Push { uint n_choices, n_experts; } pc;

shared uint sums[256];

bool chosen(uint s, uint e) {
    const int id = ids[s];
    return e < pc.n_experts ? id == int(e) : (id < 0 || id >= int(pc.n_experts));
}

void main() {
    const uint e = gl_WorkGroupID.x, lid = gl_LocalInvocationIndex;
    // Each invocation walks a contiguous run of ids twice (count, then rank), so one scan
    // of 256 partial counts orders them all.
    const uint per = (pc.n_choices + 255u) / 256u;
    const uint s0 = min(lid * per, pc.n_choices), s1 = min(s0 + per, pc.n_choices);
    uint mine = 0u;
    for (uint s = s0; s < s1; ++s)
        if (chosen(s, e)) ++mine;
    sums[lid] = mine;
    barrier();
    for (uint d = 1u; d < 256u; d <<= 1) {
        const uint add = lid >= d ? sums[lid - d] : 0u;
        barrier();
        sums[lid] += add;
        barrier();
    }
    uint rank = sums[lid] - mine;
    for (uint s = s0; s < s1; ++s)
        if (chosen(s, e)) ranks[s] = rank++;
    if (lid == 255u) counts[e] = sums[255];
}
