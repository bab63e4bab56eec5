#include "model/resident_weights.h"

#include "core/error.h"

namespace mst {

WeightView ResidentWeights::load(const std::string &name, std::initializer_list<int64_t> shape, WeightUse use) {
    const TensorInfo &info = checkpoint_.require(name, shape);
    if (!dtype_is_float_weight(info.dtype) && !dtype_is_quantized(info.dtype))
        fail(MST_ERR_UNSUPPORTED, "tensor '{}' has dtype {}; weights must be F32, F16, BF16, Q8 or Q4", name,
             dtype_name(info.dtype));
    if (recorder_ && shape.size() == 2) recorder_(name, use);
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

}  // namespace mst
