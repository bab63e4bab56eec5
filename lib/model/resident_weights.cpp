#include "model/resident_weights.h"

#include <cstring>

#include "core/error.h"

namespace mst {

WeightView ResidentWeights::load(const std::string &name, std::initializer_list<int64_t> shape) {
    const TensorInfo &info = checkpoint_.require(name, shape);
    if (!dtype_is_float_weight(info.dtype))
        fail(MST_ERR_UNSUPPORTED, "tensor '{}' has dtype {}; weights must be F32, F16 or BF16", name,
             dtype_name(info.dtype));
    AlignedBuffer buffer(info.nbytes, name.c_str());
    checkpoint_.read(info, buffer.data());
    const int64_t rows = shape.size() == 2 ? *shape.begin() : 1;
    const int64_t cols = *(shape.end() - 1);
    WeightView view{info.dtype, buffer.data(), rows, cols};
    bytes_ += info.nbytes;
    buffers_.push_back(std::move(buffer));
    return view;
}

std::vector<float> ResidentWeights::load_f32(const std::string &name, std::initializer_list<int64_t> shape) {
    const TensorInfo &info = checkpoint_.require(name, shape);
    bytes_ += info.numel() * sizeof(float);
    return checkpoint_.read_f32(info);
}

WeightView ResidentWeights::load_rows(const std::string &name, std::initializer_list<int64_t> shape,
                                      const std::vector<int64_t> &row_order) {
    if (shape.size() != 2) fail(MST_ERR_INVALID_ARGUMENT, "load_rows '{}': shape must be [rows, cols]", name);
    const int64_t rows = *shape.begin();
    std::vector<bool> seen(static_cast<size_t>(rows), false);
    bool permutation = int64_t(row_order.size()) == rows;
    for (size_t i = 0; permutation && i < row_order.size(); ++i) {
        const int64_t r = row_order[i];
        permutation = r >= 0 && r < rows && !seen[size_t(r)];
        if (permutation) seen[size_t(r)] = true;
    }
    if (!permutation)
        fail(MST_ERR_INVALID_ARGUMENT, "load_rows '{}': row order is not a permutation of {} rows", name, rows);

    const WeightView stored = load(name, shape);
    const size_t row_bytes = size_t(stored.cols) * dtype_size(stored.dtype);
    // Through a copy of the stored bytes, then into the buffer that load() owns.
    AlignedBuffer &buffer = buffers_.back();
    std::vector<uint8_t> original(buffer.data(), buffer.data() + size_t(rows) * row_bytes);
    for (int64_t i = 0; i < rows; ++i)
        std::memcpy(buffer.data() + size_t(i) * row_bytes, original.data() + size_t(row_order[size_t(i)]) * row_bytes,
                    row_bytes);
    return stored;
}

}  // namespace mst
