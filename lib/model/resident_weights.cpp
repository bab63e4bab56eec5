#include "model/resident_weights.h"

#include <cstring>

#include "core/error.h"
#include "core/packed_int.h"

namespace mst {
namespace {

int64_t rows_of(std::initializer_list<int64_t> shape) { return shape.size() == 2 ? *shape.begin() : 1; }
int64_t cols_of(std::initializer_list<int64_t> shape) { return *(shape.end() - 1); }

}  // namespace

const TensorInfo &ResidentWeights::require(const std::string &name, std::initializer_list<int64_t> shape) {
    const TensorInfo &info = checkpoint_.require(name, shape);
    if (!dtype_is_float_weight(info.dtype) && !dtype_is_quantized(info.dtype) && info.dtype != DType::F8_E4M3)
        fail(MST_ERR_UNSUPPORTED, "tensor '{}' has dtype {}; weights must be F32, F16, BF16, Q8, Q4 or F8_E4M3", name,
             dtype_name(info.dtype));
    n_params_ += uint64_t(info.numel());
    return info;
}

WeightView ResidentWeights::keep(const TensorInfo &info, int64_t rows, int64_t cols) {
    if (const uint8_t *mapped = checkpoint_.mapped(info)) {
        WeightView view{info.dtype, mapped, rows, cols};
        view.stable = true;  // resident: unchanged while the model lives
        bytes_ += info.nbytes;
        return view;
    }
    AlignedBuffer buffer(info.nbytes, info.name.c_str());
    checkpoint_.read(info, buffer.data());
    WeightView view{info.dtype, buffer.data(), rows, cols};
    view.stable = true;  // resident: unchanged while the model lives
    bytes_ += info.nbytes;
    buffers_.push_back(std::move(buffer));
    return view;
}

std::optional<PackedIntScheme> ResidentWeights::packed_scheme(const std::string &name) const {
    constexpr std::string_view kWeight = ".weight";
    if (compressed_ == nullptr || !name.ends_with(kWeight) || checkpoint_.find(name) != nullptr) return std::nullopt;
    const std::string base = name.substr(0, name.size() - kWeight.size());
    if (checkpoint_.find(base + ".weight_packed") == nullptr) return std::nullopt;
    const std::string_view module = std::string_view(base).substr(
        base.starts_with(compressed_prefix_) ? compressed_prefix_.size() : 0);
    const std::optional<PackedIntScheme> scheme = compressed_->scheme_for(module);
    if (!scheme)
        fail(MST_ERR_BAD_FORMAT, "tensor '{}.weight_packed' is pack-quantized, but the config's quantization_config "
             "does not quantize module '{}'", base, module);
    return scheme;
}

WeightView ResidentWeights::keep_packed(const std::string &name, int64_t rows, int64_t cols,
                                        const PackedIntScheme &scheme, WeightUse use) {
    const std::string base = name.substr(0, name.size() - std::string_view(".weight").size());
    const PackedIntTensors t = require_packed_int(checkpoint_, base, rows, cols, scheme);
    // Words and scales: what the stored form holds, whatever its use (neither is a float matrix).
    if (recorder_) recorder_(t.packed->name, use == WeightUse::Matrix ? WeightUse::KeepStored : use);
    const WeightView words = keep(*t.packed, rows, t.packed->shape[1]);
    const WeightView scales = keep(*t.scale, rows, t.scale->shape[1]);
    n_params_ += uint64_t(rows * cols);
    WeightView view{scheme.bits == 4 ? DType::PACKED_I4 : DType::PACKED_I8, words.data, rows, cols};
    view.scales = static_cast<const uint8_t *>(scales.data);
    view.group_size = scheme.group_for(cols);
    view.stable = true;
    return view;
}

WeightView ResidentWeights::load(const std::string &name, std::initializer_list<int64_t> shape, WeightUse use) {
    if (const std::optional<PackedIntScheme> scheme = packed_scheme(name); scheme && shape.size() == 2) {
        // Used otherwise than through matmul: dequantised to float32, exactly.
        const int64_t rows = rows_of(shape), cols = cols_of(shape);
        const uint64_t bytes_before = bytes_;
        const WeightView packed = keep_packed(name, rows, cols, *scheme, WeightUse::KeepStored);
        AlignedBuffer buffer(uint64_t(rows * cols) * sizeof(float), name.c_str());
        auto *values = reinterpret_cast<float *>(buffer.data());
        const uint64_t row_bytes = uint64_t(packed_int_row_words(cols, scheme->bits)) * 4;
        const uint64_t scale_row_bytes = uint64_t(cols / packed.group_size) * 2;
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c)
                values[r * cols + c] = packed_int_element(static_cast<const uint8_t *>(packed.data) + r * row_bytes,
                                                          packed.scales + r * scale_row_bytes, packed.group_size, c,
                                                          scheme->bits);
        // The packed copy is not needed: only the float32 one stays.
        buffers_.pop_back();
        buffers_.pop_back();
        WeightView view{DType::F32, values, rows, cols};
        view.stable = true;
        bytes_ = bytes_before + buffer.size();
        buffers_.push_back(std::move(buffer));
        return view;
    }
    const TensorInfo &info = require(name, shape);
    if (recorder_ && shape.size() == 2) recorder_(name, use);
    const int64_t rows = rows_of(shape), cols = cols_of(shape);
    if (info.dtype != DType::F8_E4M3) return keep(info, rows, cols);
    const TensorInfo &scale_info = require_fp8_scale(checkpoint_, info, 1, rows, cols, fp8_block_);
    const std::vector<float> scales = checkpoint_.read_f32(scale_info);
    AlignedBuffer fp8(info.nbytes, name.c_str());
    checkpoint_.read(info, fp8.data());
    AlignedBuffer buffer(uint64_t(rows * cols) * sizeof(float), name.c_str());
    auto *values = reinterpret_cast<float *>(buffer.data());
    dequantize_block_fp8(fp8.data(), scales.data(), rows, cols, fp8_block_, values);
    WeightView view{DType::F32, values, rows, cols};
    view.stable = true;
    bytes_ += buffer.size();
    buffers_.push_back(std::move(buffer));
    return view;
}

Linear ResidentWeights::load_linear(const std::string &name, std::initializer_list<int64_t> shape) {
    if (const std::optional<PackedIntScheme> scheme = packed_scheme(name); scheme && shape.size() == 2) {
        Linear linear;
        linear.weight = keep_packed(name, rows_of(shape), cols_of(shape), *scheme, WeightUse::Matrix);
        return linear;
    }
    const TensorInfo &info = require(name, shape);
    if (recorder_ && shape.size() == 2) recorder_(name, WeightUse::Matrix);
    const int64_t rows = rows_of(shape), cols = cols_of(shape);
    Linear linear;
    linear.weight = keep(info, rows, cols);
    if (info.dtype != DType::F8_E4M3) return linear;
    const TensorInfo &scale_info = require_fp8_scale(checkpoint_, info, 1, rows, cols, fp8_block_);
    if (scale_info.dtype == DType::F32) {
        linear.scale_inv = keep(scale_info, scale_info.shape[0], scale_info.shape[1]);
    } else {
        // BF16 / F16 scales widened: the kernels take F32.
        const std::vector<float> scales = checkpoint_.read_f32(scale_info);
        AlignedBuffer buffer(scales.size() * sizeof(float), scale_info.name.c_str());
        std::memcpy(buffer.data(), scales.data(), buffer.size());
        linear.scale_inv = WeightView{DType::F32, buffer.data(), scale_info.shape[0], scale_info.shape[1]};
        linear.scale_inv.stable = true;
        bytes_ += buffer.size();
        buffers_.push_back(std::move(buffer));
    }
    linear.block = fp8_block_;
    return linear;
}

std::vector<float> ResidentWeights::load_f32(const std::string &name, std::initializer_list<int64_t> shape) {
    const TensorInfo &info = checkpoint_.require(name, shape);
    bytes_ += info.numel() * sizeof(float);
    n_params_ += uint64_t(info.numel());
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
    const size_t row_bytes = size_t(dtype_row_bytes(stored.dtype, stored.cols));
    // Into a buffer of its own: the stored bytes may be the read-only resident mapping.
    AlignedBuffer buffer(uint64_t(rows) * row_bytes, name.c_str());
    const auto *original = static_cast<const uint8_t *>(stored.data);
    for (int64_t i = 0; i < rows; ++i)
        std::memcpy(buffer.data() + size_t(i) * row_bytes, original + size_t(row_order[size_t(i)]) * row_bytes,
                    row_bytes);
    // A copy load() made is not needed any more (bytes_ already counts these rows once).
    if (!buffers_.empty() && buffers_.back().data() == stored.data) buffers_.pop_back();
    WeightView view = stored;
    view.data = buffer.data();
    buffers_.push_back(std::move(buffer));
    return view;
}

}  // namespace mst
