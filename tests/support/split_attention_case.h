// A decode attention step's shape and random inputs, as the split-attention tests draw them
// (test_vulkan_attention_combine_fusion, test_vulkan_attention_split_latency): q rows of
// n_tokens queries, K and V caches of `capacity` positions a KV head, the heads' sinks, and
// one call of a backend's attention over positions pos0 .. pos0 + n_tokens - 1.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "cpu_op_fixture.h"

namespace mst::test {

struct SplitCase {
    int32_t n_tokens, n_heads, n_kv_heads, head_dim, v_dim, pos0, window;
    bool sinks;
};

struct SplitInputs {
    std::vector<float> q, k, v, sinks;
    int64_t stride = 0;
};

// q, k, v and the sinks drawn from seeds seed .. seed + 3.
inline SplitInputs split_inputs(const SplitCase &c, int64_t capacity, uint32_t seed) {
    SplitInputs in;
    in.stride = capacity * std::max(c.head_dim, c.v_dim);
    in.q = random_floats(size_t(c.n_tokens * c.n_heads * c.head_dim), seed);
    in.k = random_floats(size_t(c.n_kv_heads * in.stride), seed + 1, -2.0f, 2.0f);
    in.v = random_floats(size_t(c.n_kv_heads * in.stride), seed + 2);
    in.sinks = random_floats(size_t(c.n_heads), seed + 3, -1.0f, 2.0f);
    return in;
}

inline AttentionParams split_params(const SplitCase &c, const SplitInputs &in, int32_t pos0, uint64_t cache_id) {
    AttentionParams p;
    p.n_tokens = c.n_tokens;
    p.n_heads = c.n_heads;
    p.n_kv_heads = c.n_kv_heads;
    p.head_dim = c.head_dim;
    p.v_head_dim = c.v_dim;
    p.pos0 = pos0;
    p.kv_stride = in.stride;
    p.scale = 1.0f / std::sqrt(float(c.head_dim));
    p.sliding_window = c.window;
    p.sinks = c.sinks ? in.sinks.data() : nullptr;
    p.cache_id = cache_id;
    return p;
}

// The output of b's attention for the case at pos0 (NaN where the call wrote nothing).
inline std::vector<float> split_attend(Backend &b, const SplitCase &c, const SplitInputs &in, int32_t pos0,
                                       uint64_t cache_id) {
    std::vector<float> out(size_t(c.n_tokens * c.n_heads * c.v_dim), NAN);
    b.attention(in.q.data(), in.k.data(), in.v.data(), out.data(), split_params(c, in, pos0, cache_id));
    return out;
}

inline std::string describe(const SplitCase &c) {
    return "n_tokens " + std::to_string(c.n_tokens) + " heads " + std::to_string(c.n_heads) + "/" +
           std::to_string(c.n_kv_heads) + " dims " + std::to_string(c.head_dim) + "/" + std::to_string(c.v_dim) +
           " pos0 " + std::to_string(c.pos0) + " window " + std::to_string(c.window) + " sinks " +
           std::to_string(c.sinks);
}

}  // namespace mst::test
