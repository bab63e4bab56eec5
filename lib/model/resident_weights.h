// The non-expert weights, read once at load time and held in memory in their stored
// type (the kernels compute on bf16 / f16 directly).
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "core/aligned_buffer.h"
#include "format/checkpoint.h"

namespace mst {

// How an architecture uses a 2-D weight it loads; `moestream convert --dense q8` stores
// only Matrix weights quantized, so the architecture's word is what makes that safe.
enum class WeightUse {
    // Used only through Backend::matmul or as a table of rows (an embedding lookup
    // through dtype_row_bytes and convert_to_f32): may come back as Q8 from a packed file.
    Matrix,
    // Anything else (transposed, sliced by columns, read as floats), or a weight whose
    // precision matters more than its size (a router): always kept as stored.
    KeepStored,
};
// Told the name and use of every 2-D weight an architecture loads (the converter's hook).
using WeightUseRecorder = std::function<void(const std::string &name, WeightUse use)>;

class ResidentWeights {
public:
    explicit ResidentWeights(const Checkpoint &checkpoint, WeightUseRecorder recorder = {})
        : checkpoint_(checkpoint), recorder_(std::move(recorder)) {}

    // Read tensor `name` (which must have `shape`, given as [rows, cols] or [n]) and
    // return a view of it in its stored type: F32, F16, BF16, or Q8 / Q4 from a packed
    // file. Throws BAD_FORMAT for a missing tensor or wrong shape and UNSUPPORTED for
    // another dtype, naming the tensor. A 2-D weight's `use` goes to the recorder.
    WeightView load(const std::string &name, std::initializer_list<int64_t> shape, WeightUse use = WeightUse::Matrix);
    // Like load, for small vectors (biases) that are used as float32.
    std::vector<float> load_f32(const std::string &name, std::initializer_list<int64_t> shape);
    bool has(const std::string &name) const { return checkpoint_.find(name) != nullptr; }

    uint64_t bytes() const { return bytes_; }

private:
    const Checkpoint &checkpoint_;
    WeightUseRecorder recorder_;
    std::vector<AlignedBuffer> buffers_;
    uint64_t bytes_ = 0;
};

}  // namespace mst
