// The non-expert weights, read once at load time and held in memory in their stored
// type (the kernels compute on bf16 / f16 directly, and on FP8 with block scales through
// load_linear).
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "core/aligned_buffer.h"
#include "format/checkpoint.h"
#include "model/linear.h"

namespace mst {

class ResidentWeights {
public:
    // fp8_block: the block size of FP8 weights' scales (see fp8_block_size()).
    explicit ResidentWeights(const Checkpoint &checkpoint, Fp8BlockSize fp8_block = {})
        : checkpoint_(checkpoint), fp8_block_(fp8_block) {}

    // Read tensor `name` (which must have `shape`, given as [rows, cols] or [n]) and
    // return a view of it. An FP8 E4M3 tensor is dequantised with its block scales to
    // float32, exactly. Throws BAD_FORMAT for a missing tensor or wrong shape (or missing
    // FP8 scales) and UNSUPPORTED for a non-float dtype, naming the tensor.
    WeightView load(const std::string &name, std::initializer_list<int64_t> shape);
    // Like load, for a projection's weight: FP8 E4M3 stays FP8 with its block scales
    // (half the memory of bf16, computed by Backend::matmul_block_fp8).
    Linear load_linear(const std::string &name, std::initializer_list<int64_t> shape);
    // Like load, for small vectors (biases) that are used as float32.
    std::vector<float> load_f32(const std::string &name, std::initializer_list<int64_t> shape);
    bool has(const std::string &name) const { return checkpoint_.find(name) != nullptr; }
    // Like load for a [rows, cols] tensor, with its rows reordered: row i of the view is row
    // row_order[i] of the tensor (a permutation of 0..rows-1). For fused projections whose
    // row grouping differs from the one the computation wants (Qwen3-Next's in_proj_qkvz).
    WeightView load_rows(const std::string &name, std::initializer_list<int64_t> shape,
                         const std::vector<int64_t> &row_order);

    uint64_t bytes() const { return bytes_; }
    // Elements of the weights loaded (FP8 scales are not parameters).
    uint64_t n_params() const { return n_params_; }

private:
    const TensorInfo &require(const std::string &name, std::initializer_list<int64_t> shape);
    WeightView keep(const TensorInfo &info, int64_t rows, int64_t cols);

    const Checkpoint &checkpoint_;
    Fp8BlockSize fp8_block_;
    std::vector<AlignedBuffer> buffers_;
    uint64_t bytes_ = 0;
    uint64_t n_params_ = 0;
};

}  // namespace mst
