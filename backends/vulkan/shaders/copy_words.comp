#version 450
// dst = src in 32-bit words: CommandStream::copy for small transfers between host-visible
// and device memory, where a dispatch starts sooner than the copy engine.
layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer Src { uint src[]; };
layout(std430, binding = 1) writeonly buffer Dst { uint dst[]; };

layout(push_constant) uniform Push { uint n, stride; } pc;

void main() {
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += pc.stride) dst[i] = src[i];
}
