// The non-expert weights, read once at load time and held in memory in their stored
// type (the kernels compute on bf16 / f16 directly).
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "core/aligned_buffer.h"
#include "format/checkpoint.h"

namespace mst {

class ResidentWeights {
public:
    explicit ResidentWeights(const Checkpoint &checkpoint) : checkpoint_(checkpoint) {}

    // Read tensor `name` (which must have `shape`, given as [rows, cols] or [n]) and
    // return a view of it. Throws BAD_FORMAT for a missing tensor or wrong shape and
    // UNSUPPORTED for a non-float dtype, naming the tensor.
    WeightView load(const std::string &name, std::initializer_list<int64_t> shape);
    // Like load, for small vectors (biases) that are used as float32.
    std::vector<float> load_f32(const std::string &name, std::initializer_list<int64_t> shape);
    bool has(const std::string &name) const { return checkpoint_.find(name) != nullptr; }
    // Like load for a [rows, cols] tensor, with its rows reordered: row i of the view is row
    // row_order[i] of the tensor (a permutation of 0..rows-1). For fused projections whose
    // row grouping differs from the one the computation wants (Qwen3-Next's in_proj_qkvz).
    WeightView load_rows(const std::string &name, std::initializer_list<int64_t> shape,
                         const std::vector<int64_t> &row_order);

    uint64_t bytes() const { return bytes_; }

private:
    const Checkpoint &checkpoint_;
    std::vector<AlignedBuffer> buffers_;
    uint64_t bytes_ = 0;
};

}  // namespace mst
