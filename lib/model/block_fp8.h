// FP8 E4M3 weights with per-block float32 scales, as DeepSeek-V3 and Kimi K2 ship them:
// next to each quantised `x.weight` [rows][cols] lies `x.weight_scale_inv`
// [ceil(rows / br)][ceil(cols / bc)], and a weight's value is fp8 * the scale of its block.
// The block size is the config's quantization_config.weight_block_size.
#pragma once

#include <cstdint>
#include <string>

#include "format/checkpoint.h"
#include "format/model_config.h"

namespace mst {

struct Fp8BlockSize {
    int32_t rows = 128;
    int32_t cols = 128;
};

// The block size a config declares: quantization_config (in the text config or the
// top level) with quant_method "fp8", fmt "e4m3" and weight_block_size [br, bc];
// 128 x 128 when there is no quantization_config or a compressed-tensors one (which
// format/compressed_tensors.h reads). MST_ERR_UNSUPPORTED naming the method for any other
// quantization; MST_ERR_BAD_FORMAT for a malformed block size.
Fp8BlockSize fp8_block_size(const ModelConfig &config);

// The scale tensor's name: "x.weight" -> "x.weight_scale_inv", a fused "x" -> "x_scale_inv".
std::string fp8_scale_name(const std::string &weight_name);

// Block scales come as F32 (DeepSeek, Kimi) or BF16 / F16 (the Qwen FP8 releases); the
// kernels take F32, so other types are widened when loaded.
bool fp8_scale_dtype_ok(DType dtype);

// The scale tensor of FP8 weight `weight` (which holds `count` matrices of rows x cols:
// 1, or the experts of a fused tensor), checked: F32, BF16 or F16 and shaped
// [count?][ceil(rows / br)][ceil(cols / bc)]. MST_ERR_BAD_FORMAT naming the tensor otherwise.
const TensorInfo &require_fp8_scale(const Checkpoint &checkpoint, const TensorInfo &weight, int64_t count, int64_t rows,
                                    int64_t cols, Fp8BlockSize block);

// The dequantised matrix, exactly: out[r][c] = fp8(w[r][c]) * scale_inv[r / br][c / bc].
void dequantize_block_fp8(const uint8_t *w, const float *scale_inv, int64_t rows, int64_t cols, Fp8BlockSize block,
                          float *out);

}  // namespace mst
