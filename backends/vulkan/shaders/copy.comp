#version 450
// dst = src, 16 bytes per invocation: how fast device memory is read and written, for
// the bandwidth measurement (vulkan_bandwidth.cpp) that the benchmarks' rooflines use.
layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(std430, binding = 1) writeonly buffer Dst { uvec4 dst[]; };

layout(push_constant) uniform Push { uint n, stride; } pc;

void main() {
    // A grid-stride loop: a fixed number of workgroups covers any size.
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += pc.stride) dst[i] = src[i];
}
