// Block-FP8 weights (E4M3 codes with per-block scales, as DeepSeek-V3, Kimi K2 and the
// Qwen FP8 releases ship them) turned into Q8 / Q4 from their dequantized values, row by
// row, so that `convert --experts q4|q8` and `--dense q8` shrink FP8 checkpoints as they
// shrink bf16 ones instead of keeping FP8 (8 bits plus scales) unasked.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/block_fp8.h"

namespace mst {

// codes: rows x cols E4M3 bytes; scales: the [ceil(rows / br)][ceil(cols / bc)] block
// scales as stored (F32, BF16 or F16: `scale_dtype`). Returns the matrix as `dtype` (Q8
// or Q4) rows. Throws naming `name` (and the row) for a size mismatch, a scale type it
// cannot read, or a row that cannot be quantized (a NaN code).
std::vector<uint8_t> requantize_block_fp8(const std::vector<uint8_t> &codes, const std::vector<uint8_t> &scales,
                                          DType scale_dtype, int64_t rows, int64_t cols, Fp8BlockSize block,
                                          DType dtype, const std::string &name);

}  // namespace mst
