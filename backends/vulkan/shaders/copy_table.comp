#version 450
// Many small copies in one dispatch: entry e of the table (workgroup row y = e) copies
// `words` 32-bit words from src[src_word] to dst[dst_word]. CommandStream::run delivers a
// batch's results to host memory with it: a decode layer's sync had about 30 of them
// (residual, norms, q/k/v, KV rows, router logits, ids), each its own copy_words dispatch,
// whose recording and start cost more than their bytes (bench_vulkan --profile on an H100).
layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer Src { uint src[]; };
layout(std430, binding = 1) writeonly buffer Dst { uint dst[]; };
layout(std430, binding = 2) readonly buffer Table { uint table[]; };  // src_word, dst_word, words

layout(push_constant) uniform Push { uint n_entries; } pc;

void main() {
    const uint e = gl_WorkGroupID.y;
    if (e >= pc.n_entries) return;
    const uint s = table[3u * e], d = table[3u * e + 1u], n = table[3u * e + 2u];
    for (uint i = gl_GlobalInvocationID.x; i < n; i += gl_NumWorkGroups.x * 256u) dst[d + i] = src[s + i];
}
