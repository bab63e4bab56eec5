// Test weights a model would hold: stable (resident on the device after their first use), so
// that a product or norm records no copy of them, which would record a batch's deferred ops
// first (the Vulkan fusion tests depend on that). A stable view is cached by address and
// size, so these live to the end of the program and no later weight takes their address.
#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <vector>

#include "backends/backend.h"
#include "cpu_op_fixture.h"
#include "test_weight.h"

namespace mst::test {

// A random weight of type t (TestWeight's values), stable.
inline WeightView stable_weight(DType t, int64_t rows, int64_t cols, uint32_t seed) {
    static std::deque<TestWeight> kept;
    kept.emplace_back(t, rows, cols, seed);
    WeightView v = kept.back().view;
    v.stable = true;
    return v;
}

// A norm weight of `dim` floats around 1 (f32: what the device holds norms as), stable.
inline WeightView norm_weight(int64_t dim, uint32_t seed) {
    static std::deque<std::vector<float>> kept;
    kept.push_back(random_floats(size_t(dim), seed, 0.5f, 1.5f));
    WeightView v;
    v.dtype = DType::F32;
    v.data = kept.back().data();
    v.rows = 1;
    v.cols = dim;
    v.stable = true;
    return v;
}

// The bits of a float vector, so that a bit-for-bit comparison prints which element differs.
inline std::vector<uint32_t> float_bits(const std::vector<float> &v) {
    std::vector<uint32_t> b(v.size());
    std::memcpy(b.data(), v.data(), v.size() * sizeof(float));
    return b;
}

}  // namespace mst::test
