// The non-expert weights, read once at load time and held in memory in their stored
// type (the kernels compute on bf16 / f16 directly, and on FP8 with block scales through
// load_linear). A packed file's tensors are used in place in its verified resident
// mapping (Checkpoint::map_resident) when it has one, and copied otherwise.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "core/aligned_buffer.h"
#include "format/checkpoint.h"
#include "format/compressed_tensors.h"
#include "format/resident_mapping.h"
#include "model/linear.h"

namespace mst {

// How an architecture uses a 2-D weight it loads; `moestream convert --dense q8` stores
// only Matrix weights quantized, so the architecture's word is what makes that safe.
enum class WeightUse {
    // Used only through Backend::matmul (run_linear) or as a table of rows (an embedding
    // lookup through dtype_row_bytes and convert_to_f32): may come back as Q8 from a
    // packed file.
    Matrix,
    // Anything else (transposed, sliced by columns, read as floats), or a weight whose
    // precision matters more than its size (a router): always kept as stored.
    KeepStored,
};
// Told the name and use of every 2-D weight an architecture loads (the converter's hook).
using WeightUseRecorder = std::function<void(const std::string &name, WeightUse use)>;

class ResidentWeights {
public:
    // fp8_block: the block size of FP8 weights' scales (see fp8_block_size()).
    explicit ResidentWeights(const Checkpoint &checkpoint, Fp8BlockSize fp8_block = {})
        : checkpoint_(checkpoint), fp8_block_(fp8_block) {}
    // recorder: ModelBuildContext::record_weight_use, told each 2-D weight's use.
    ResidentWeights(const Checkpoint &checkpoint, WeightUseRecorder recorder, Fp8BlockSize fp8_block = {})
        : checkpoint_(checkpoint), fp8_block_(fp8_block), recorder_(std::move(recorder)) {}

    // Read tensor `name` (which must have `shape`, given as [rows, cols] or [n]) and
    // return a view of it in its stored type: F32, F16, BF16, or Q8 / Q4 from a packed
    // file. An FP8 E4M3 tensor is dequantised with its block scales to float32, exactly.
    // Throws BAD_FORMAT for a missing tensor or wrong shape (or missing FP8 scales) and
    // UNSUPPORTED for another dtype, naming the tensor. A 2-D weight's `use` goes to the
    // recorder.
    WeightView load(const std::string &name, std::initializer_list<int64_t> shape, WeightUse use = WeightUse::Matrix);
    // Like load, for a projection's weight run by run_linear (a Matrix): FP8 E4M3 stays
    // FP8 with its block scales (half the memory of bf16, computed by
    // Backend::matmul_block_fp8).
    Linear load_linear(const std::string &name, std::initializer_list<int64_t> shape);
    // Like load, for small vectors (biases) that are used as float32.
    std::vector<float> load_f32(const std::string &name, std::initializer_list<int64_t> shape);
    bool has(const std::string &name) const { return checkpoint_.find(name) != nullptr; }
    // Lets load and load_linear take a weight `x.weight` stored as compressed-tensors
    // pack-quantized `x.weight_packed` / `x.weight_scale` / `x.weight_shape`, under the
    // config's scheme for module x (its name without `name_prefix`, a wrapper's prefix).
    // load_linear keeps it packed (Backend::matmul computes on it); load dequantizes it to
    // float32. A packed weight whose module the config does not quantize is BAD_FORMAT.
    // `config` must outlive this object.
    void set_compressed_tensors(const CompressedTensorsConfig *config, std::string name_prefix) {
        compressed_ = config;
        compressed_prefix_ = std::move(name_prefix);
    }
    // Like load for a [rows, cols] tensor, with its rows reordered: row i of the view is row
    // row_order[i] of the tensor (a permutation of 0..rows-1). For fused projections whose
    // row grouping differs from the one the computation wants (Qwen3-Next's in_proj_qkvz).
    // Rows move whole, so a Q8 matrix is reordered as well as a bf16 one.
    WeightView load_rows(const std::string &name, std::initializer_list<int64_t> shape,
                         const std::vector<int64_t> &row_order);

    uint64_t bytes() const { return bytes_; }
    // Elements of the weights loaded (FP8 scales are not parameters).
    uint64_t n_params() const { return n_params_; }

private:
    const TensorInfo &require(const std::string &name, std::initializer_list<int64_t> shape);
    WeightView keep(const TensorInfo &info, int64_t rows, int64_t cols);
    // The scheme of `name` (".weight") when it is stored pack-quantized, else nullopt.
    std::optional<PackedIntScheme> packed_scheme(const std::string &name) const;
    WeightView keep_packed(const std::string &name, int64_t rows, int64_t cols, const PackedIntScheme &scheme,
                           WeightUse use);

    const Checkpoint &checkpoint_;
    Fp8BlockSize fp8_block_;
    WeightUseRecorder recorder_;
    std::vector<AlignedBuffer> buffers_;
    // Keeps the mapping that views returned by keep() may point into.
    std::shared_ptr<const ResidentMapping> mapping_ = checkpoint_.resident_mapping();
    uint64_t bytes_ = 0;
    uint64_t n_params_ = 0;
    const CompressedTensorsConfig *compressed_ = nullptr;
    std::string compressed_prefix_;
};

}  // namespace mst
