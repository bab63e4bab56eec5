#include "model/block_fp8.h"

#include "core/error.h"

namespace mst {
namespace {

const nlohmann::json *quantization_config(const ModelConfig &config) {
    for (const nlohmann::json *object : {&config.raw, &config.outer_raw}) {
        if (!object->is_object()) continue;
        const auto it = object->find("quantization_config");
        if (it != object->end() && !it->is_null()) return &*it;
    }
    return nullptr;
}

}  // namespace

Fp8BlockSize fp8_block_size(const ModelConfig &config) {
    Fp8BlockSize block;
    const nlohmann::json *q = quantization_config(config);
    if (q == nullptr) return block;
    if (!q->is_object()) fail(MST_ERR_BAD_FORMAT, "config.json field 'quantization_config' must be an object");
    const auto method = q->find("quant_method");
    const std::string name = method != q->end() && method->is_string() ? method->get<std::string>() : "(none)";
    // compressed-tensors checkpoints (Kimi K2.5) are judged by format/compressed_tensors.h.
    if (name == "compressed-tensors") return block;
    if (name != "fp8")
        fail(MST_ERR_UNSUPPORTED, "quantization '{}' is not supported for {} (supported: fp8 e4m3 with block scales)",
             name, config.model_type);
    const auto format = q->find("fmt");
    if (format != q->end() && !(format->is_string() && format->get<std::string>() == "e4m3"))
        fail(MST_ERR_UNSUPPORTED, "fp8 format {} is not supported (supported: e4m3)", format->dump());
    const auto size = q->find("weight_block_size");
    if (size == q->end() || size->is_null()) return block;
    const auto valid = [](const nlohmann::json &v) {
        return v.is_number_integer() && v.get<int64_t>() >= 1 && v.get<int64_t>() <= (int64_t(1) << 20);
    };
    if (!size->is_array() || size->size() != 2 || !valid((*size)[0]) || !valid((*size)[1]))
        fail(MST_ERR_BAD_FORMAT, "quantization_config.weight_block_size must be two positive integers, not {}",
             size->dump());
    block.rows = (*size)[0].get<int32_t>();
    block.cols = (*size)[1].get<int32_t>();
    return block;
}

bool fp8_scale_dtype_ok(DType dtype) { return dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16; }

std::string fp8_scale_name(const std::string &weight_name) { return weight_name + "_scale_inv"; }

const TensorInfo &require_fp8_scale(const Checkpoint &checkpoint, const TensorInfo &weight, int64_t count, int64_t rows,
                                    int64_t cols, Fp8BlockSize block) {
    const std::string name = fp8_scale_name(weight.name);
    const TensorInfo *scale = checkpoint.find(name);
    if (scale == nullptr)
        fail(MST_ERR_BAD_FORMAT, "FP8 tensor '{}' has no block scales '{}' in checkpoint '{}'", weight.name, name,
             checkpoint.dir());
    if (!fp8_scale_dtype_ok(scale->dtype))
        fail(MST_ERR_UNSUPPORTED, "FP8 block scales '{}' have dtype {}; expected F32, BF16 or F16", name,
             dtype_name(scale->dtype));
    const int64_t srows = (rows + block.rows - 1) / block.rows, scols = (cols + block.cols - 1) / block.cols;
    const std::vector<int64_t> expected =
        weight.shape.size() == 3 ? std::vector<int64_t>{count, srows, scols} : std::vector<int64_t>{srows, scols};
    if (scale->shape != expected)
        fail(MST_ERR_BAD_FORMAT, "FP8 block scales '{}' have shape {}, expected {} for weight {} in {}x{} blocks", name,
             shape_to_string(scale->shape), shape_to_string(expected), shape_to_string(weight.shape), block.rows,
             block.cols);
    return *scale;
}

void dequantize_block_fp8(const uint8_t *w, const float *scale_inv, int64_t rows, int64_t cols, Fp8BlockSize block,
                          float *out) {
    const int64_t scale_cols = (cols + block.cols - 1) / block.cols;
    for (int64_t r = 0; r < rows; ++r) {
        const float *scales = scale_inv + (r / block.rows) * scale_cols;
        for (int64_t c = 0; c < cols; ++c)
            out[r * cols + c] = fp8_e4m3_to_f32(w[r * cols + c]) * scales[c / block.cols];
    }
}

}  // namespace mst
