// One attention call's shape and its random inputs, as the Vulkan attention tests draw them
// (test_vulkan_ops, test_vulkan_flash_attention): q, K and V caches whose rows lie
// `extra_stride` floats apart past the context (a stride that is no multiple of the row), the
// heads' sinks, and the CPU's output against the GPU's.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "backends/backend.h"
#include "cpu_op_fixture.h"

namespace mst::test {

struct AttentionCase {
    int32_t n_tokens, n_heads, n_kv_heads, head_dim, v_head_dim, pos0, window;
    bool sinks;
    int64_t extra_stride;
};

// Normalized error of `gpu`'s attention against `cpu`'s for case c, its q, k, v and sinks
// drawn from seeds seed .. seed + 3; cache_id as AttentionParams has it (0: none).
inline double attention_error(Backend &cpu, Backend &gpu, const AttentionCase &c, uint32_t seed,
                              uint64_t cache_id = 0) {
    const int64_t n_ctx = int64_t(c.pos0) + c.n_tokens;
    const int64_t stride = n_ctx * std::max(c.head_dim, c.v_head_dim) + c.extra_stride;
    const std::vector<float> q = random_floats(size_t(c.n_tokens * c.n_heads * c.head_dim), seed);
    const std::vector<float> k = random_floats(size_t(c.n_kv_heads * stride), seed + 1, -2.0f, 2.0f);
    const std::vector<float> v = random_floats(size_t(c.n_kv_heads * stride), seed + 2);
    const std::vector<float> sinks = random_floats(size_t(c.n_heads), seed + 3, -1.0f, 2.0f);
    AttentionParams p;
    p.n_tokens = c.n_tokens;
    p.n_heads = c.n_heads;
    p.n_kv_heads = c.n_kv_heads;
    p.head_dim = c.head_dim;
    p.v_head_dim = c.v_head_dim;
    p.pos0 = c.pos0;
    p.kv_stride = stride;
    p.scale = 1.0f / std::sqrt(float(c.head_dim));
    p.sliding_window = c.window;
    p.sinks = c.sinks ? sinks.data() : nullptr;
    p.cache_id = cache_id;
    std::vector<float> want(size_t(c.n_tokens * c.n_heads * c.v_head_dim)), got(want.size(), NAN);
    cpu.attention(q.data(), k.data(), v.data(), want.data(), p);
    gpu.attention(q.data(), k.data(), v.data(), got.data(), p);
    return normalized_error(got, want);
}

}  // namespace mst::test
