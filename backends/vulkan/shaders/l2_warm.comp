#version 450
// The L2 warm-up (docs/gpu_decode_kernels.md, "Weights pulled into L2 beside a
// latency-bound level"; MST_VULKAN_L2_WARM): reads up to three ranges of weights that a
// later level's product will read, so that they are in the GPU's L2 when it does. It runs
// in the level of a latency-bound kernel (the split attention, combine_id), which leaves
// the memory system mostly idle, on a modest grid (op_l2_warm.cpp chooses it) so that
// kernel keeps most multiprocessors. Its result is nothing: each invocation folds what it
// loads into one value, written into `sink` (a scratch slice nothing reads) only when that
// value hits one constant, so the loads cannot be dropped as unused and, depending on the
// data, cannot be moved below the condition either.
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x = 256) in;  // op_l2_warm.cpp's kWarmThreads

#define UNROLL 8  // loads of an invocation in flight together

layout(std430, binding = 0) readonly buffer A { uvec4 a[]; };
layout(std430, binding = 1) readonly buffer B { uvec4 b[]; };
layout(std430, binding = 2) readonly buffer C { uvec4 c[]; };
layout(std430, binding = 3) writeonly buffer Sink { uvec4 sink[]; };

// Each range's length in uvec4s (a range's last partial uvec4, if any, is not read).
layout(push_constant) uniform Push { uint na, nb, nc; } pc;

// Grid-stride over one range, UNROLL independent loads a round, then the tail one at a time.
#define WARM(buf, n)                                                          \
    {                                                                         \
        uint i = gl_GlobalInvocationID.x;                                     \
        for (; i + (UNROLL - 1u) * stride < n; i += UNROLL * stride) {        \
            uvec4 v[UNROLL];                                                  \
            [[unroll]] for (uint u = 0u; u < UNROLL; ++u) v[u] = buf[i + u * stride]; \
            [[unroll]] for (uint u = 0u; u < UNROLL; ++u) acc ^= v[u];        \
        }                                                                     \
        for (; i < n; i += stride) acc ^= buf[i];                             \
    }

void main() {
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    uvec4 acc = uvec4(0u);
    WARM(a, pc.na)
    WARM(b, pc.nb)
    WARM(c, pc.nc)
    // Rarely true, and harmless when it is: nothing reads the sink.
    if (acc == uvec4(0x9e3779b9u, 0x7f4a7c15u, 0x85ebca6bu, 0xc2b2ae35u)) sink[0] = acc;
}
